"""Hourly incremental runs into tables that already hold the day (issue 12), simulator clock advancing.

The day's runs must end exactly where one full run at the final "now" ends, a re-run must change nothing, a
crash between the data and the watermarks must be repaired by the next hourly run, and each run's commits
may rewrite only the previous run's lookback files — never the rest of the day.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import requests
from deltalake import DeltaTable

from osipi_connector import PILakeflowConnector
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import TIMESERIES, WATERMARKS, TableSpec
from osipi_connector.lake.sink import WriteResult
from osipi_connector.piwebapi.pitime import format_datetime
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.server import running_simulator
from tests.conftest import FIXED_NOW
from tests.extract.conftest import served_rows, table_rows
from tests.extract.test_runner import config, content

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~20 s: five simulated hours
LOOKBACK = timedelta(minutes=10)
DAY_START = FIXED_NOW


def simulator_config() -> SimConfig:
    """Heavy late and edited data, all of it arriving within the lookback (so hourly runs can see it all)."""
    return SimConfig(
        seed=23,
        tags=40,
        now=DAY_START,
        late_share=0.5,
        late_delay_s=(60.0, 500.0),
        edit_share=0.2,
        edit_delay_s=300.0,
        rate_limit_max_requests=0,
    )


class CrashOnWatermarks(DeltaSink):
    """Dies when the watermarks are written: every data commit of the run is on disk, no watermark moved."""

    def merge(self, spec: TableSpec, data: pa.Table, **hints) -> WriteResult:
        if spec.name == WATERMARKS.name:
            raise OSError("killed between the data commits and the watermark commit")
        return super().merge(spec, data, **hints)


def version(sink: DeltaSink) -> int:
    return DeltaTable(sink.path(TIMESERIES)).version()


def logged_since(sink: DeltaSink, before: int, action: str) -> set[str]:
    """Paths the commits after `before` added or removed (`action`), from the Delta log."""
    paths = set()
    for v in range(before + 1, version(sink) + 1):
        log = sink.path(TIMESERIES) / "_delta_log" / f"{v:020d}.json"
        paths |= {json.loads(line)[action]["path"] for line in log.read_text().splitlines() if f'"{action}"' in line}
    return paths


def removed_since(sink: DeltaSink, before: int) -> set[str]:
    """Paths the commits after `before` removed (rewrote)."""
    return logged_since(sink, before, "remove")


def files_reaching(sink: DeltaSink, moment: datetime) -> set[str]:
    """Current files whose timestamp statistics reach `moment` or later (ms statistics: 1 ms slack)."""
    actions = pa.table(DeltaTable(sink.path(TIMESERIES)).get_add_actions(flatten=True))
    cut = moment - timedelta(milliseconds=1)
    return {p for p, hi in zip(actions["path"].to_pylist(), actions["max.timestamp"].to_pylist()) if hi >= cut}


def test_a_day_of_hourly_runs_ends_as_one_full_run_rewriting_only_lookback_files(tmp_path: Path) -> None:
    sim = simulator_config()
    with running_simulator(sim) as first:
        server = requests.get(f"{first.url}/dataservers").json()["Items"][0]["WebId"]
        points = requests.get(f"{first.url}/dataservers/{server}/points", params={"maxCount": 16}).json()["Items"]
    tags = {p["Name"]: p["WebId"] for p in points}
    cfg = config("", tmp_path / "lake", list(tags), mode="incremental", start_date=format_datetime(DAY_START))
    cfg["extraction"]["end_date"] = None  # each run ends at the server's "now"
    cfg["extraction"]["lookback"] = "10m"
    cfg["performance"]["commit_rows"] = 4_500  # several commits per run; by row count run 2 would cut elsewhere
    cfg["performance"]["max_window"] = "1d"  # the default: hourly runs share the day's grid slot
    sink = DeltaSink(tmp_path / "lake")
    rewrote_only_lookback = []
    for hour in range(1, 6):
        sim.now = DAY_START + timedelta(hours=hour)
        with running_simulator(sim) as server_now:
            cfg["pi_web_api"]["url"] = server_now.url
            before = version(sink) if hour > 1 else -1
            older = files_reaching(sink, DAY_START) if hour > 1 else set()  # every file of the day so far
            lookback_files = files_reaching(sink, sim.now - timedelta(hours=1) - LOOKBACK) if hour > 1 else set()
            run_sink = CrashOnWatermarks(tmp_path / "lake") if hour == 3 else sink
            result = PILakeflowConnector(cfg, sink=run_sink).run(datasets=["timeseries"])
            if hour == 3:  # killed after its data: hour 4 re-reads from hour 2's watermark and repairs it
                assert any("killed between" in e for e in result.errors)
                continue
            assert result.status == "success", result.errors
            if hour in (2, 5):  # a normal hourly run after a normal one
                # rewritten: the previous run's lookback files (and files this run wrote), never older ones
                removed = removed_since(sink, before)
                # ...each once: a file this run wrote (a rewritten lookback file) is not rewritten again by a
                # later commit of the same run, because every run commits at the same tags (plan.CommitGrid)
                twice = removed & logged_since(sink, before, "add")
                rewrote_only_lookback.append(
                    (bool(removed & lookback_files), removed & (older - lookback_files), twice)
                )
    assert rewrote_only_lookback == [(True, set(), set()), (True, set(), set())]

    final = format_datetime(sim.now)
    with running_simulator(sim) as last:
        served = served_rows(last.url, list(tags.values()), format_datetime(DAY_START), final)
        landed = table_rows(sink)
        assert len(landed) == len(served)  # no duplicates...
        assert set(landed) == served  # ...nothing lost, late and edited values as the server has them now
        reference = DeltaSink(tmp_path / "full")
        full = dict(cfg, extraction=dict(cfg["extraction"], mode="full", end_date=final), pi_web_api=cfg["pi_web_api"])
        full["pi_web_api"] = dict(cfg["pi_web_api"], url=last.url)
        assert PILakeflowConnector(full, sink=reference).run(datasets=["timeseries"]).status == "success"
        assert content(sink) == content(reference)
        cfg["pi_web_api"]["url"] = last.url
        unchanged = version(sink)
        assert PILakeflowConnector(cfg, sink=sink).run(datasets=["timeseries"]).status == "success"
        assert version(sink) == unchanged  # the same hour again: nothing to write, no commit
