"""What a run leaves for the user (issue 12, defect 3): pi_run_metrics.requests counts the HTTP requests the
server received, a maxCount above the server's limit names the key to change, and a run killed with SIGKILL
leaves a `running` row that the next run of the same kind marks `died` and reports. Real simulator, real
delta-rs tables, a real `kill -9`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import timedelta
from pathlib import Path

import pytest
import requests
import yaml

from osipi_connector import PILakeflowConnector, cli
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import RUN_METRICS
from osipi_connector.piwebapi.pitime import format_datetime
from osipi_connector.simulator.config import FaultConfig, SimConfig
from osipi_connector.simulator.server import running_simulator
from tests.conftest import FIXED_NOW
from tests.extract.test_runner import config

pytestmark = pytest.mark.integration
START = FIXED_NOW - timedelta(hours=2)
FAST_RETRY = {"max_attempts": 6, "backoff_seconds": 0.01, "max_backoff_seconds": 0.05}


def sim(**kwargs: object) -> SimConfig:
    return SimConfig(seed=13, tags=20, now=FIXED_NOW, rate_limit_max_requests=0, **kwargs)  # type: ignore[arg-type]


def names(url: str, n: int = 4) -> list[str]:
    server = requests.get(f"{url}/dataservers").json()["Items"][0]
    points = requests.get(f"{url}/dataservers/{server['WebId']}/points", params={"maxCount": n}).json()["Items"]
    return [p["Name"] for p in points]


def metrics(root: Path) -> dict[str, dict]:
    return {m["run_id"]: m for m in DeltaSink(root).read(RUN_METRICS).to_pylist()}


def test_run_metrics_requests_are_the_http_requests_the_server_received(tmp_path) -> None:
    """Paged windows (several batch rounds) and 5xx bursts (retried POSTs): every request counts once."""
    with running_simulator(sim(faults=FaultConfig(error_rate=0.2, error_burst=2, seed=9))) as running:
        tags = names(running.url)
        received: list[int] = []  # per request the server received: its injected status (0: none)
        draw = running.app.faults.draw

        def counting():
            fault = draw()
            received.append(fault.status)
            return fault

        running.app.faults.draw = counting
        cfg = config(running.url, tmp_path, tags, max_count_per_tag=500, end_date=None)
        cfg["retry"] = FAST_RETRY
        result = PILakeflowConnector(cfg, sink=DeltaSink(tmp_path)).run(datasets=["tags", "timeseries"])
    assert result.status == "success", result.errors
    row = metrics(tmp_path)[result.run_id]
    assert row["requests"] == len(received)
    assert any(received), "some requests were answered 5xx and sent again: the retries are counted too"
    assert row["status"] == "success"
    assert row["datasets"] == ["tags", "timeseries"]


def test_a_max_count_above_the_server_limit_names_the_key_to_change(tmp_path) -> None:
    with running_simulator(sim(max_returned_items_per_call=1000)) as running:
        tags = names(running.url, 2)
        cfg = config(running.url, tmp_path, tags, max_count_per_tag=5000)
        result = PILakeflowConnector(cfg, sink=DeltaSink(tmp_path)).run(datasets=["timeseries"])
    assert result.status == "failed"
    assert len(result.errors) == len(tags)
    for error in result.errors:
        assert "greater than the maximum allowed (1000)" in error
        assert "lower extraction.max_count_per_tag" in error


KILLED_RUN = textwrap.dedent(
    """
    import json, os, signal, sys
    from osipi_connector import PILakeflowConnector
    from osipi_connector.lake.delta_sink import DeltaSink

    class KilledAtTheData(DeltaSink):
        def merge(self, spec, data, **hints):
            if spec.name == "pi_timeseries":
                os.kill(os.getpid(), signal.SIGKILL)  # kill -9: no finally, no handler, no final row
            return super().merge(spec, data, **hints)

    cfg = json.loads(sys.argv[1])
    PILakeflowConnector(cfg, sink=KilledAtTheData(cfg["local"]["lakehouse_root"])).run(datasets=["timeseries"])
    """
)


def test_a_killed_run_is_reported_died_by_the_next_run(tmp_path, capsys) -> None:
    root = tmp_path / "lake"
    with running_simulator(sim()) as running:
        cfg = config(running.url, root, names(running.url), mode="incremental", start_date=format_datetime(START))
        cfg["extraction"]["end_date"] = None
        killed = subprocess.run(
            [sys.executable, "-c", KILLED_RUN, json.dumps(cfg)], env=os.environ, capture_output=True, timeout=120
        )
        assert killed.returncode == -9, killed.stderr.decode()
        (dead,) = metrics(root).values()
        assert (dead["status"], dead["finished_at"], dead["datasets"]) == ("running", None, ["timeseries"])

        other_lane = PILakeflowConnector(cfg, sink=DeltaSink(root)).run(mode="backfill", datasets=["timeseries"])
        assert other_lane.died == [], "a backfill may run beside the hourly run: only the same kind of run judges"

        path = tmp_path / "config.yaml"
        path.write_text(yaml.safe_dump(cfg))
        cli.main(["run", "--config", str(path), "--datasets", "timeseries", "--no-progress"])
    out = capsys.readouterr()
    assert f"earlier run {dead['run_id']} (incremental timeseries, started " in out.err
    assert "died: it stopped (killed, out of memory, cluster lost) before writing its outcome" in out.err
    rows = metrics(root)
    assert rows[dead["run_id"]]["status"] == "died"
    assert rows[dead["run_id"]]["errors"][-1].startswith("died (found by run ")
    assert sorted(m["status"] for m in rows.values()) == ["died", "success", "success"]
    assert len(rows) == 3, "one row per run: the running row is completed, not duplicated"
