"""Whose clock ends the extraction window: the PI server's, or this machine's only by explicit choice."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from osipi_connector import PILakeflowConnector
from osipi_connector.config import ConfigError
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import TIMESERIES
from osipi_connector.piwebapi.client import PIWebAPIClient
from osipi_connector.piwebapi.settings import ClientSettings
from osipi_connector.simulator.server import RunningSimulator

pytestmark = pytest.mark.integration


class NoServerTime(PIWebAPIClient):
    """The simulator as an older PI Web API (or a restricted account) that does not report ServerTime."""

    def get_json(self, resource: str, params: Mapping[str, Any] | None = None) -> Any:
        answer = super().get_json(resource, params)
        if resource == "dataservers":
            for item in answer.get("Items", []):
                item.pop("ServerTime", None)
        return answer


def connector(url: str, root: Path, **extraction: object) -> tuple[PILakeflowConnector, NoServerTime]:
    config = {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {"name_filter": "TI00001*", "mode": "full", "start_date": "2025-03-01T11:00:00Z", **extraction},
        "local": {"lakehouse_root": str(root)},
    }
    client = NoServerTime(ClientSettings(url=url, auth_type="anonymous"))
    built = PILakeflowConnector(config, sink=DeltaSink(root), client=client)
    return built, client


def test_a_server_without_its_time_fails_the_run_naming_the_opt_in(simulator: RunningSimulator, tmp_path: Path):
    run, client = connector(simulator.url, tmp_path, end_date=None)
    with client, pytest.raises(ConfigError, match=r"extraction\.clock: local"):
        run.run()
    assert not DeltaSink(tmp_path).exists(TIMESERIES), "nothing may be written with a window nobody's clock ended"


def test_clock_local_is_the_explicit_opt_in(simulator: RunningSimulator, tmp_path: Path):
    run, client = connector(simulator.url, tmp_path, clock="local", end_date="2025-03-01T12:00:00Z")
    with client:
        result = run.run()
    assert result.status == "success", result.errors
    assert result.rows[TIMESERIES.name] > 0
