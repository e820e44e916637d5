"""`lake/range_delete.delete_ranges` (the change feed's removals) on delta-rs; the Spark sink runs the same
assertions in tests/lake/test_spark_change_feed.py."""

from __future__ import annotations

import datetime as dt

from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.range_delete import delete_ranges
from osipi_connector.lake.schemas import TIMESERIES
from tests.lake.rows import T0, timeseries


def assert_delete_ranges(sink) -> None:
    """Two tags, two days, five values a day (every 10 min): a range inside one day and one at a day's start
    remove exactly their rows; the other tag's rows at the same times stay."""
    sink.merge(TIMESERIES, timeseries(tags=2, days=2, per_day=5))
    day = dt.timedelta(days=1)
    ranges = [
        ("W000", T0 + dt.timedelta(minutes=20), T0 + dt.timedelta(minutes=40)),  # 3 values
        ("W001", T0 + day - dt.timedelta(hours=1), T0 + day + dt.timedelta(minutes=10)),  # 2 values, 2 partitions
    ]
    assert delete_ranges(sink, TIMESERIES, ranges) == 5
    left = {(r["tag_webid"], r["timestamp"]) for r in sink.read(TIMESERIES).to_pylist()}
    assert len(left) == 15
    gone = {("W000", T0 + dt.timedelta(minutes=m)) for m in (20, 30, 40)}
    gone |= {("W001", T0 + day + dt.timedelta(minutes=m)) for m in (0, 10)}
    assert not left & gone
    assert ("W001", T0 + dt.timedelta(minutes=20)) in left
    assert delete_ranges(sink, TIMESERIES, ranges) == 0, "a second delete finds nothing: idempotent"


def test_delete_ranges_on_delta_rs(tmp_path) -> None:
    assert_delete_ranges(DeltaSink(tmp_path))


def test_delete_ranges_through_conflict_retry(tmp_path) -> None:
    """The runner's sink is wrapped in ConflictRetry; deletes go through it (retried on a lost commit race)."""
    from osipi_connector.lake.conflict_retry import ConflictRetry

    assert_delete_ranges(ConflictRetry(DeltaSink(tmp_path)))
