"""Fixtures of the extractor tests: a real PIWebAPIClient on the session simulator (over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from osipi_connector.piwebapi.client import PIWebAPIClient
from osipi_connector.piwebapi.settings import ClientSettings
from osipi_connector.simulator.server import RunningSimulator


def make_client(url: str) -> PIWebAPIClient:
    return PIWebAPIClient(ClientSettings(url=url, auth_type="anonymous"))


@pytest.fixture(scope="module")
def pi_client(simulator: RunningSimulator) -> Iterator[PIWebAPIClient]:
    with make_client(simulator.url) as client:
        yield client
