"""Two writer PROCESSES on the same local (delta-rs) tables, held at barriers so their writes meet.

The local twin of tests/spark/test_concurrent_runs.py: the parallel `timeseries` / `event_frames` runs, a
backfill beside an incremental run, maintenance beside a run. Each process is a real PILakeflowConnector
run against the simulator; the parent checks the tables: every served value once, watermarks right, every
run successful (its pi_run_metrics row).
"""

from __future__ import annotations

import multiprocessing
import threading
from datetime import timedelta
from pathlib import Path

import pytest
import requests

from osipi_connector import PILakeflowConnector
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.maintenance import maintain
from osipi_connector.lake.schemas import EVENT_FRAMES, RUN_METRICS, TIMESERIES, WATERMARKS
from osipi_connector.piwebapi.pitime import format_datetime
from tests.concurrency import WAIT, Choreographed, together
from tests.conftest import FIXED_NOW
from tests.extract.conftest import served_rows, table_rows

pytestmark = pytest.mark.integration
AF_DATABASE = "\\\\PISIM-AF\\Plant"
END = FIXED_NOW
SPAWN = multiprocessing.get_context("spawn")


@pytest.fixture(scope="module")
def tags(simulator) -> dict[str, str]:
    server = requests.get(f"{simulator.url}/dataservers").json()["Items"][0]
    points = requests.get(f"{simulator.url}/dataservers/{server['WebId']}/points", params={"maxCount": 4}).json()
    return {p["Name"]: p["WebId"] for p in points["Items"]}


def config(url: str, tags: dict[str, str], root: Path) -> dict:
    return {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {
            "tag_names": list(tags),
            "af_database": AF_DATABASE,
            "batch_size": 2,
            "max_count_per_tag": 10_000,
        },
        "performance": {"workers": 2, "max_window": "30m", "commit_rows": 2_000},
        "local": {"lakehouse_root": str(root)},
    }


def run(url, tags, root, sink=None, mode="incremental", start=None, end=END, datasets=("timeseries",)):
    connector = PILakeflowConnector(config(url, tags, root), sink=sink or DeltaSink(root))
    return connector.run(mode=mode, start=format_datetime(start), end=format_datetime(end), datasets=list(datasets))


def _child(url, tags, root, kwargs, before, after) -> None:
    """One writer process: a run whose sink waits for the cues (multiprocessing barriers and events)."""
    cues_before = {key: (lambda c=cue: _wait(c)) for key, cue in before.items()}
    cues_after = {key: cue.set for key, cue in after.items()}
    sink = Choreographed(DeltaSink(root), before=cues_before, after=cues_after)
    result = run(url, tags, root, sink=sink, **kwargs)
    raise SystemExit(0 if result.status == "success" else 1)


def _wait(cue) -> None:
    if hasattr(cue, "is_set"):
        assert cue.wait(WAIT), "the other writer never gave its cue"
    else:
        cue.wait(WAIT)


def in_processes(url, tags, root, *writers: tuple[dict, dict, dict]) -> None:
    """Start one process per (run kwargs, before cues, after cues) and require each to succeed."""
    processes = [SPAWN.Process(target=_child, args=(url, tags, str(root), *w)) for w in writers]
    for p in processes:
        p.start()
    for p in processes:
        p.join(WAIT * 2)
    assert [p.exitcode for p in processes] == [0] * len(processes)


def metrics(root) -> list[dict]:
    return DeltaSink(root).read(RUN_METRICS).to_pylist()


def marks(root, dataset="timeseries") -> dict[str, tuple]:
    return {
        r["item_id"]: (r["low_watermark"], r["high_watermark"], r["last_status"])
        for r in DeltaSink(root).read(WATERMARKS).to_pylist()
        if r["dataset"] == dataset
    }


def assert_every_value_once(root, url, tags, start) -> None:
    served = served_rows(url, list(tags.values()), format_datetime(start), format_datetime(END))
    got = table_rows(DeltaSink(root))
    assert len(got) == len(served)
    assert set(got) == served


def test_parallel_dataset_runs_in_two_processes(simulator, tags, tmp_path) -> None:
    """(a) The first run of `timeseries` and `event_frames` at once: both create pi_watermarks (and
    pi_run_metrics) and write their watermarks at the same moment."""
    start = END - timedelta(hours=2)
    read, merge = SPAWN.Barrier(2), SPAWN.Barrier(2)
    cues = {("read", WATERMARKS.name): read, ("merge", WATERMARKS.name): merge}
    in_processes(
        simulator.url,
        tags,
        tmp_path,
        ({"start": start, "datasets": ["timeseries"]}, cues, {}),
        ({"start": start, "datasets": ["event_frames"]}, cues, {}),
    )
    assert [m["status"] for m in metrics(tmp_path)] == ["success", "success"]
    assert_every_value_once(tmp_path, simulator.url, tags, start)
    assert marks(tmp_path) == dict.fromkeys(tags.values(), (start, END, "ok"))
    assert marks(tmp_path, "event_frames") == {AF_DATABASE: (start, END, "ok")}
    assert DeltaSink(tmp_path).read(EVENT_FRAMES).num_rows > 0


def test_a_backfill_process_beside_an_incremental_one(simulator, tags, tmp_path) -> None:
    """(b) Both read the watermarks, then write the same new keys into pi_timeseries at the same moment (they
    take turns on the table: no key lands twice), and the backfill writes its watermarks — read before the
    incremental run advanced them — last: the high watermark stays where the incremental run put it."""
    first = END - timedelta(hours=2)
    assert run(simulator.url, tags, tmp_path, start=first, end=END - timedelta(hours=1)).status == "success"
    read, merge, marked = SPAWN.Barrier(2), SPAWN.Barrier(2), SPAWN.Event()
    backfill_start = END - timedelta(hours=3)  # = the incremental run's start (high - 2 h lookback): same new keys
    both = {("read", WATERMARKS.name): read, ("merge", TIMESERIES.name): merge}
    in_processes(
        simulator.url,
        tags,
        tmp_path,
        ({"start": first}, both, {("merge", WATERMARKS.name): marked}),
        (
            {"mode": "backfill", "start": backfill_start, "end": END - timedelta(hours=1)},
            {**both, ("merge", WATERMARKS.name): marked},
            {},
        ),
    )
    assert [m["status"] for m in metrics(tmp_path)] == ["success"] * 3
    assert_every_value_once(tmp_path, simulator.url, tags, backfill_start)
    assert marks(tmp_path) == dict.fromkeys(tags.values(), (backfill_start, END, "ok"))


def test_maintenance_beside_a_run(simulator, tags, tmp_path) -> None:
    """(c) OPTIMIZE + Z-order of pi_timeseries started at the moment a run writes into it: both end well and
    the table holds every value once. delta-rs' optimize does not wait for the writers' lock, but its commit
    and the run's MERGE rarely overlap here (milliseconds): a lost race being re-run is shown on real delta-rs
    conflicts in tests/lake/test_conflict_retry.py and test_delta_sink.py's two racing processes."""
    first = END - timedelta(hours=2)
    for end in (END - timedelta(hours=1), END - timedelta(minutes=30)):
        assert run(simulator.url, tags, tmp_path, start=first, end=end).status == "success"
    gate = threading.Barrier(2, timeout=WAIT)
    run_sink = Choreographed(DeltaSink(tmp_path), before={("merge", TIMESERIES.name): gate.wait})
    care_sink = Choreographed(DeltaSink(tmp_path), before={("optimize", TIMESERIES.name): gate.wait})
    hourly, care = together(
        lambda: run(simulator.url, tags, tmp_path, sink=run_sink, start=first),
        lambda: maintain(care_sink, [TIMESERIES, WATERMARKS]),
    )
    assert hourly.status == "success", hourly.errors
    assert [c.error for c in care] == [None, None]
    read_from = END - timedelta(hours=3)
    assert_every_value_once(tmp_path, simulator.url, tags, read_from)
    assert marks(tmp_path) == dict.fromkeys(tags.values(), (read_from, END, "ok"))
