"""Watermarks and the server's clock (issue 12, defect 1): a watermark never moves past the PI server's time,
and one already past it — written by an older version or with a job clock ahead of PI — is reported (log,
`watermarks_repaired` in the result and pi_run_metrics) and repaired: the next run re-reads from the data
committed, so no value is lost for good. Real simulator (its own --now, --drop-rate, --fault-seed), real
delta-rs tables."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import requests

from osipi_connector import PILakeflowConnector
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import EVENT_FRAMES, RUN_METRICS, WATERMARKS
from osipi_connector.piwebapi.errors import PIWebAPIError
from osipi_connector.piwebapi.pitime import format_datetime
from osipi_connector.simulator.config import FaultConfig, SimConfig
from osipi_connector.simulator.server import running_simulator
from tests.conftest import FIXED_NOW
from tests.extract.conftest import served_rows, table_rows
from tests.extract.test_runner import config, content, watermarks

pytestmark = pytest.mark.integration
START = FIXED_NOW - timedelta(hours=1)


def sim(**kwargs: object) -> SimConfig:
    """No late or edited data: values edited beyond the lookback are never re-read, by design (lookback)."""
    kwargs = {"late_share": 0.0, "edit_share": 0.0, "rate_limit_max_requests": 0, **kwargs}
    return SimConfig(seed=11, tags=30, now=FIXED_NOW, **kwargs)  # type: ignore[arg-type]


def tag_names(url: str, n: int = 6) -> dict[str, str]:
    server = requests.get(f"{url}/dataservers").json()["Items"][0]
    points = requests.get(f"{url}/dataservers/{server['WebId']}/points", params={"maxCount": n}).json()["Items"]
    return {p["Name"]: p["WebId"] for p in points}


def incremental(url: str, root: Path, names: list[str], **extraction: object) -> dict:
    extraction = {"mode": "incremental", "start_date": format_datetime(START), "lookback": "10m", **extraction}
    cfg = config(url, root, names, **extraction)
    cfg["extraction"]["end_date"] = extraction.get("end_date")  # None: each run ends at the clock's "now"
    return cfg


def test_watermarks_past_the_server_time_are_reported_and_repaired(tmp_path, caplog) -> None:
    """A run read PI up to its now (12:00), then its watermarks were moved to a "now" a day ahead of PI, as an
    older version did when it fell back to the job's clock (or a job clock ahead of PI does). Kept, every
    later window would start in the future and read nothing. The next run finds them past the server's time,
    says so, moves them back to the data committed and re-reads: the hour they hid is not lost."""
    config_ = sim()
    with running_simulator(config_) as first:
        tags = tag_names(first.url)
        sink = DeltaSink(tmp_path)
        assert (
            PILakeflowConnector(incremental(first.url, tmp_path, list(tags)), sink=sink)
            .run(datasets=["timeseries"])
            .status
            == "success"
        )
    ahead = FIXED_NOW + timedelta(days=1)
    future = [{**m, "high_watermark": ahead} for m in watermarks(sink).values()]
    sink.merge(WATERMARKS, pa.Table.from_pylist(future, schema=WATERMARKS.schema))
    assert {m["high_watermark"] for m in watermarks(sink).values()} == {ahead}

    config_.now = FIXED_NOW + timedelta(hours=1)  # an hour later on the server
    with running_simulator(config_) as later:
        caplog.set_level(logging.WARNING, logger="osipi_connector.runner")
        result = PILakeflowConnector(incremental(later.url, tmp_path, list(tags)), sink=sink).run(
            datasets=["timeseries"]
        )
        assert result.status == "success", result.errors
        assert result.watermarks_repaired == len(tags)
        assert any("past the PI server's time" in r.getMessage() for r in caplog.records)
        marks = watermarks(sink)
        assert {m["high_watermark"] for m in marks.values()} == {config_.now}, "moved back, then advanced to PI's now"
        served = served_rows(later.url, list(tags.values()), format_datetime(START), format_datetime(config_.now))
        got = table_rows(sink)
        assert len(got) == len(served)
        assert set(got) == served, "the hour the future watermarks hid is read"
        metrics = {m["run_id"]: m for m in sink.read(RUN_METRICS).to_pylist()}
        assert metrics[result.run_id]["watermarks_repaired"] == len(tags)

        again = PILakeflowConnector(incremental(later.url, tmp_path, list(tags)), sink=sink).run(
            datasets=["timeseries"]
        )
        assert again.status == "success"
        assert again.watermarks_repaired == 0, "repaired once, not every run"


def test_a_window_ending_after_the_server_time_moves_no_watermark_past_it(tmp_path) -> None:
    """An explicit end in the server's future (a backfill to "tomorrow"): the watermarks stop at PI's now."""
    with running_simulator(sim()) as running:
        tags = tag_names(running.url, 3)
        cfg = config(running.url, tmp_path, list(tags), start_date=format_datetime(START))
        cfg["extraction"]["end_date"] = format_datetime(FIXED_NOW + timedelta(days=1))
        result = PILakeflowConnector(cfg, sink=DeltaSink(tmp_path)).run(datasets=["timeseries"])
        assert result.status == "success", result.errors
        assert {m["high_watermark"] for m in watermarks(DeltaSink(tmp_path)).values()} == {FIXED_NOW}


def test_dropped_connections_on_the_first_request_never_move_a_watermark_past_the_server(tmp_path) -> None:
    """The issue's repro: `simulate --now 2025-03-01T12:00:00Z --drop-rate 0.5 --fault-seed 4`, no request
    before the run, then an incremental run. Whatever the faults do to it, no watermark passes PI's now, and a
    run on a healthy server afterwards ends with every value served."""
    faulty = sim(faults=FaultConfig(drop_rate=0.5, seed=4))
    with running_simulator(sim()) as healthy:
        tags = tag_names(healthy.url, 4)
    with running_simulator(faulty) as running:
        cfg = incremental(running.url, tmp_path, list(tags))
        cfg["retry"] = {"max_attempts": 5, "backoff_seconds": 0.01, "max_backoff_seconds": 0.05}
        try:
            status = PILakeflowConnector(cfg, sink=DeltaSink(tmp_path)).run(datasets=["timeseries"]).status
        except PIWebAPIError as exc:  # the server time could not be had after every retry: the run fails loudly
            status = str(exc)
        assert status in ("success", "partial") or "dataservers" in status
    assert all(m["high_watermark"] <= FIXED_NOW for m in watermarks(DeltaSink(tmp_path)).values())
    with running_simulator(sim()) as healthy:
        cfg = incremental(healthy.url, tmp_path, list(tags))
        assert PILakeflowConnector(cfg, sink=DeltaSink(tmp_path)).run(datasets=["timeseries"]).status == "success"
        served = served_rows(healthy.url, list(tags.values()), format_datetime(START), format_datetime(FIXED_NOW))
        got = table_rows(DeltaSink(tmp_path))
        assert len(got) == len(served)
        assert set(got) == served


def test_an_event_frame_watermark_past_the_server_time_is_repaired(tmp_path) -> None:
    """The same for the AF database's event-frame watermark: the frames of the hour it hid are read."""
    config_ = sim()
    db = "\\\\PISIM-AF\\Plant"
    sink = DeltaSink(tmp_path / "hourly")
    with running_simulator(config_) as first:
        cfg = incremental(first.url, sink.root, ["unused"], af_database=db)
        assert PILakeflowConnector(cfg, sink=sink).run(datasets=["event_frames"]).status == "success"
    (mark,) = [m for m in sink.read(WATERMARKS).to_pylist() if m["dataset"] == "event_frames"]
    future = {**mark, "high_watermark": FIXED_NOW + timedelta(days=1)}
    sink.merge(WATERMARKS, pa.Table.from_pylist([future], schema=WATERMARKS.schema))

    config_.now = FIXED_NOW + timedelta(hours=2)
    with running_simulator(config_) as later:
        cfg["pi_web_api"]["url"] = later.url
        result = PILakeflowConnector(cfg, sink=sink).run(datasets=["event_frames"])
        assert result.status == "success", result.errors
        assert result.watermarks_repaired == 1
        reference = DeltaSink(tmp_path / "full")
        full = incremental(later.url, reference.root, ["unused"], af_database=db, mode="full")
        full["extraction"]["end_date"] = format_datetime(config_.now)
        assert PILakeflowConnector(full, sink=reference).run(datasets=["event_frames"]).status == "success"
    assert content(sink, EVENT_FRAMES) == content(reference, EVENT_FRAMES)
