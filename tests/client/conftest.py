"""Helpers of the client tests: a client for a running simulator, with fast retries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from osipi_connector.piwebapi.client import PIWebAPIClient
from osipi_connector.piwebapi.settings import ClientSettings, Credentials, RetrySettings
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.server import RunningSimulator, running_simulator
from tests.conftest import FIXED_NOW

FAST_RETRY = RetrySettings(max_attempts=6, backoff_seconds=0.01, max_backoff_seconds=0.05)


def sim_config(**kwargs: Any) -> SimConfig:
    """A small simulator of a test's own (faults and auth must not leak into the shared one)."""
    kwargs.setdefault("rate_limit_max_requests", 0)
    return SimConfig(seed=7, tags=kwargs.pop("tags", 20), now=FIXED_NOW, **kwargs)


def make_client(running: RunningSimulator, credentials: Credentials | None = None, **settings: Any) -> PIWebAPIClient:
    settings.setdefault("auth_type", "anonymous")
    settings.setdefault("retry", FAST_RETRY)
    return PIWebAPIClient(ClientSettings(url=running.url, **settings), credentials)


@contextmanager
def serving(
    credentials: Credentials | None = None, settings: dict | None = None, **config: Any
) -> Iterator[tuple[RunningSimulator, PIWebAPIClient]]:
    """A simulator and a client for it; the client is closed before the server stops."""
    with (
        running_simulator(sim_config(**config)) as running,
        make_client(running, credentials, **(settings or {})) as client,
    ):
        yield running, client


def first_points(client: PIWebAPIClient, n: int) -> list[dict]:
    server = client.get_json("dataservers")["Items"][0]
    return client.get_json(server["Links"]["Points"], {"maxCount": n})["Items"]


RECORDED = {"startTime": "2025-03-01T00:00:00Z", "endTime": "2025-03-01T06:00:00Z", "maxCount": 150000}
