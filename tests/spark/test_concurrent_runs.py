"""Two writers on the same Delta tables through real Spark + Delta Lake, made to commit at the same moment.

The writers that meet in production: the hourly job's parallel `timeseries` and `event_frames` tasks, a
backfill beside the hourly job, the weekly maintenance beside a run. Each test runs two real
PILakeflowConnector runs (or a run and `maintain`) on threads of the one local Spark — Delta's optimistic
concurrency applies between threads as between clusters — with a sink that holds both at a barrier before
the commits that can race. It checks what users see: every served row once, watermarks right, both runs
successful, and which commits had to be retried (lake/conflict_retry.py).
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
from datetime import timedelta

import pytest
import requests

from osipi_connector import PILakeflowConnector
from osipi_connector.extract.event_frames import fetch_event_frames
from osipi_connector.lake.conflict_retry import ConflictRetry
from osipi_connector.lake.maintenance import maintain
from osipi_connector.lake.schemas import EVENT_FRAMES, RUN_METRICS, TIMESERIES, WATERMARKS
from osipi_connector.lake.sink import Location
from osipi_connector.lake.spark_sink import SparkSink
from osipi_connector.piwebapi.pitime import format_datetime
from osipi_connector.watermarks import rows as watermark_rows
from tests.concurrency import WAIT, Choreographed, barrier, together
from tests.conftest import FIXED_NOW
from tests.extract.conftest import make_client, served_rows, table_rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]
AF_DATABASE = "\\\\PISIM-AF\\Plant"
END = FIXED_NOW
_schemas = itertools.count()


@pytest.fixture(scope="module")
def tags(simulator) -> dict[str, str]:
    """name -> WebID of three points."""
    server = requests.get(f"{simulator.url}/dataservers").json()["Items"][0]
    points = requests.get(f"{simulator.url}/dataservers/{server['WebId']}/points", params={"maxCount": 3}).json()
    return {p["Name"]: p["WebId"] for p in points["Items"]}


@pytest.fixture
def location() -> Location:
    """Fresh schemas per test in the shared session's catalog."""
    n = next(_schemas)
    return Location("spark_catalog", f"bronze_cc{n}", f"checkpoints_cc{n}")


def config(url: str, tags: dict[str, str], **extraction: object) -> dict:
    return {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {
            "tag_names": list(tags),
            "af_database": AF_DATABASE,
            "mode": "incremental",
            "batch_size": 10,
            "max_count_per_tag": 10_000,
            **extraction,
        },
        # one unit and one commit per run: the runs' MERGEs are few, so the barrier meets the ones that race
        "performance": {"workers": 2, "max_window": "1d", "commit_rows": 1_000_000, "distributed": False},
    }


def run(url, tags, sink, mode="incremental", start=None, end=END, datasets=("timeseries",)):
    connector = PILakeflowConnector(config(url, tags), sink=sink)
    return connector.run(mode=mode, start=format_datetime(start), end=format_datetime(end), datasets=list(datasets))


def marks(sink, dataset="timeseries") -> dict[str, tuple]:
    return {
        r["item_id"]: (r["low_watermark"], r["high_watermark"], r["last_status"])
        for r in sink.read(WATERMARKS).to_pylist()
        if r["dataset"] == dataset
    }


def assert_every_value_once(sink, url: str, tags: dict[str, str], start) -> None:
    """The table holds what the simulator serves for the tags in [start, END]: nothing lost, nothing twice."""
    served = served_rows(url, list(tags.values()), format_datetime(start), format_datetime(END))
    got = table_rows(sink)
    assert len(got) == len(served)
    assert set(got) == served


def retried(*results) -> set[tuple[str, str]]:
    """(operation, table) of every commit the runs had to re-run."""
    return {(r.operation, r.table) for result in results for r in result.retries}


def test_parallel_hourly_tasks_share_the_watermarks_without_conflicts(spark, simulator, tags, location) -> None:
    """(a) The first hourly run: `timeseries` and `event_frames` at once. They create pi_watermarks and
    pi_run_metrics together (a Delta conflict, retried) and MERGE their watermarks at the same moment — into
    different partitions of pi_watermarks, which Delta does not count as a conflict."""
    start = END - timedelta(hours=2)
    order = [("append", RUN_METRICS.name), ("read", WATERMARKS.name), ("merge", WATERMARKS.name)]  # as a run goes
    cues = {k: barrier() for k in order}
    sinks = [Choreographed(SparkSink(spark, location), before=cues) for _ in range(2)]
    series, frames = together(
        lambda: run(simulator.url, tags, sinks[0], start=start, datasets=["timeseries"]),
        lambda: run(simulator.url, tags, sinks[1], start=start, datasets=["event_frames"]),
    )
    assert (series.status, frames.status) == ("success", "success"), series.errors + frames.errors
    assert all(s.cued == list(cues) for s in sinks)  # both met at every barrier: the commits really raced

    check = SparkSink(spark, location)
    assert_every_value_once(check, simulator.url, tags, start)
    with make_client(simulator.url) as client:
        frames_served = fetch_event_frames(
            client, af_database=AF_DATABASE, start=start, end=END, run_id="x", ingested_at=END
        )
    stored = check.read(EVENT_FRAMES, columns=["event_frame_id"])["event_frame_id"].to_pylist()
    assert sorted(stored) == sorted(frames_served["event_frame_id"].to_pylist())
    assert marks(check) == dict.fromkeys(tags.values(), (start, END, "ok"))
    assert marks(check, "event_frames") == {AF_DATABASE: (start, END, "ok")}

    metrics = {m["run_id"]: m for m in check.read(RUN_METRICS).to_pylist()}
    assert {m["status"] for m in metrics.values()} == {"success"}
    for result in (series, frames):  # the final row counts the retries before its own MERGE (itself may retry)
        before_row = [r for r in result.retries if (r.operation, r.table) != ("merge", RUN_METRICS.name)]
        assert metrics[result.run_id]["conflict_retries"] == len(before_row)
    # The watermark MERGEs met at the barrier and neither had to be re-run: disjoint dataset partitions.
    assert ("merge", WATERMARKS.name) not in retried(series, frames)
    # Both created pi_run_metrics (their `running` rows) and pi_watermarks (their first read) at once: Delta
    # lets one CREATE win (ProtocolChangedException for the other, which re-runs and finds the table).
    created = {("ensure", RUN_METRICS.name), ("read", RUN_METRICS.name), ("append", RUN_METRICS.name)}
    assert retried(series, frames) & ({("read", WATERMARKS.name)} | created)
    print("retried:", [(r.operation, r.table, r.conflict) for r in series.retries + frames.retries])


@pytest.mark.flaky(reruns=2)  # the staged MERGE race does not always produce a Delta conflict
def test_a_backfill_beside_the_hourly_run_loses_nothing_and_never_moves_a_mark_back(
    spark, simulator, tags, location
) -> None:
    """(b) The hourly run and a backfill read the same watermarks, MERGE the same pi_timeseries partition at
    the same moment (one of them re-runs its MERGE), and the backfill writes its watermarks — read before the
    hourly run advanced them — last: the high watermark stays where the hourly run put it."""
    first = END - timedelta(hours=2)
    assert run(simulator.url, tags, SparkSink(spark, location), start=first, end=END - timedelta(hours=1)).status == (
        "success"
    )
    marked = threading.Event()
    read, merge = barrier(), barrier()
    hourly_sink = Choreographed(
        SparkSink(spark, location),
        before={("read", WATERMARKS.name): read, ("merge", TIMESERIES.name): merge},
        after={("merge", WATERMARKS.name): marked.set},
    )
    backfill_sink = Choreographed(
        SparkSink(spark, location),
        before={
            ("read", WATERMARKS.name): read,
            ("merge", TIMESERIES.name): merge,
            ("merge", WATERMARKS.name): lambda: marked.wait(WAIT) or pytest.fail("the hourly run never wrote marks"),
        },
    )
    backfill_start = END - timedelta(hours=3)  # = the hourly run's start (high - 2 h lookback): same new keys
    hourly, backfill = together(
        lambda: run(simulator.url, tags, hourly_sink, start=first, end=END),
        lambda: run(
            simulator.url, tags, backfill_sink, mode="backfill", start=backfill_start, end=END - timedelta(hours=1)
        ),
    )
    assert (hourly.status, backfill.status) == ("success", "success"), hourly.errors + backfill.errors
    assert ("merge", TIMESERIES.name) in retried(hourly, backfill)  # the MERGEs really collided
    print("retried:", [(r.operation, r.table, r.conflict) for r in hourly.retries + backfill.retries])

    check = SparkSink(spark, location)
    assert_every_value_once(check, simulator.url, tags, backfill_start)
    assert marks(check) == dict.fromkeys(tags.values(), (backfill_start, END, "ok"))
    metrics = {m["run_id"]: m["conflict_retries"] for m in check.read(RUN_METRICS).to_pylist()}
    assert metrics[hourly.run_id] + metrics[backfill.run_id] >= 1


def test_maintenance_beside_a_run(spark, simulator, tags, location) -> None:
    """(c) OPTIMIZE ZORDER of pi_timeseries starts at the moment the hourly run MERGEs into it; whichever
    commits second re-runs if Delta calls it a conflict; both end well and the table holds every value once."""
    first = END - timedelta(hours=2)
    sink = SparkSink(spark, location)
    for end in (END - timedelta(hours=1), END - timedelta(minutes=30)):  # two runs: small files to compact
        assert run(simulator.url, tags, sink, start=first, end=end).status == "success"
    together_at = barrier()
    run_sink = Choreographed(SparkSink(spark, location), before={("merge", TIMESERIES.name): together_at})
    care_sink = Choreographed(SparkSink(spark, location), before={("optimize", TIMESERIES.name): together_at})
    hourly, care = together(
        lambda: run(simulator.url, tags, run_sink, start=first, end=END),
        lambda: maintain(care_sink, [TIMESERIES, WATERMARKS]),
    )
    assert hourly.status == "success", hourly.errors
    assert [c.error for c in care] == [None, None]
    assert (run_sink.cued, care_sink.cued) == ([("merge", TIMESERIES.name)], [("optimize", TIMESERIES.name)])
    # No retry is needed unless the run's update MERGE rewrites a file OPTIMIZE compacted: its insert-only
    # MERGEs remove no file, and Delta lets an append commit beside a compaction (whose rewrites change no
    # data). Before the sink split its MERGE (lake/spark_sql.py merge_sql), one of the two always re-ran.
    print("retried:", retried(hourly), [c.conflict_retries for c in care])

    check = SparkSink(spark, location)
    read_from = END - timedelta(hours=3)  # the second run re-read its lookback (2 h) before its start mark
    assert_every_value_once(check, simulator.url, tags, read_from)
    assert marks(check) == dict.fromkeys(tags.values(), (read_from, END, "ok"))


@pytest.mark.parametrize(("partitioned", "conflicts"), [(True, 0), (False, 1)])
def test_watermark_merges_of_two_datasets_conflict_only_without_the_dataset_partitions(
    spark, location, partitioned, conflicts
) -> None:
    """Why pi_watermarks is partitioned: the same two simultaneous MERGEs (one dataset each) commit side by
    side into the partitioned table and collide in an unpartitioned one."""
    spec = WATERMARKS if partitioned else dataclasses.replace(WATERMARKS, partition_by=())
    SparkSink(spark, location).ensure(spec)
    gate = barrier()
    sinks = [
        ConflictRetry(Choreographed(SparkSink(spark, location), before={("merge", spec.name): gate})) for _ in "ab"
    ]

    def write(sink, dataset):
        mark = {"item_id": "X", "low": first_mark, "high": END, "status": "ok"}
        sink.merge(spec, watermark_rows([mark], run_id=dataset, updated_at=END, dataset=dataset))

    first_mark = END - timedelta(hours=1)
    together(lambda: write(sinks[0], "timeseries"), lambda: write(sinks[1], "event_frames"))
    assert sum(len(s.retries) for s in sinks) == conflicts
    assert (
        set(marks(SparkSink(spark, location), "timeseries"))
        == set(marks(SparkSink(spark, location), "event_frames"))
        == {"X"}
    )
