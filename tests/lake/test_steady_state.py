"""The hourly incremental shape on real delta-rs tables: a batch = the lookback overlap + one new hour.

New rows are appended, rows already in the table as they are are dropped, only changed rows reach MERGE,
and that MERGE reads and rewrites the previous batch's lookback files, not the day (issue 12).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from osipi_connector.lake import merge_conditions
from osipi_connector.lake.changed_rows import _target_rows, split_changes
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import TIMESERIES
from osipi_connector.lake.sink import WriteResult
from tests.lake import rows

LOOKBACK = dt.timedelta(minutes=10)
TAGS = 20


def hour_batch(hour: int, edits: frozenset[tuple[str, dt.datetime]] = frozenset(), late: int = 0) -> pa.Table:
    """What the incremental run at `hour`:00 reads: every tag's minute values in [previous end - lookback, end].
    `edits` are (tag, timestamp) whose value changed at the source; `late` adds values at :30 s in the overlap
    that the previous run did not see."""
    end = rows.T0 + dt.timedelta(hours=hour)
    start = end - dt.timedelta(hours=1) - LOOKBACK if hour > 1 else rows.T0
    records = []
    for tag in range(TAGS):
        webid = f"W{tag:03d}"
        minute = start
        while minute <= end:
            value = tag + minute.minute / 100
            records.append(_row(webid, minute, value + (1000 if (webid, minute) in edits else 0)))
            minute += dt.timedelta(minutes=1)
        for i in range(late):
            records.append(_row(webid, start + dt.timedelta(minutes=i, seconds=30), -1.0))
    records.sort(key=lambda r: (r["tag_webid"], r["timestamp"]))
    return rows.table(TIMESERIES, records)


def _row(webid: str, ts: dt.datetime, value: float) -> dict:
    return {
        "tag_webid": webid,
        "tag_name": f"name-{webid}",
        "timestamp": ts,
        "value_seq": 0,
        "value": value,
        "good": True,
        "units": "degC",
        "partition_date": ts.date(),
        "ingested_at": rows.T0 + dt.timedelta(days=1),
        "run_id": "r",
    }


def reread_from(hour: int) -> dt.datetime:
    return rows.T0 + dt.timedelta(hours=hour) - LOOKBACK


def content(sink: DeltaSink) -> dict[tuple, float]:
    table = sink.read(TIMESERIES, columns=["tag_webid", "timestamp", "value_seq", "value"]).to_pylist()
    keyed = {(r["tag_webid"], r["timestamp"], r["value_seq"]): r["value"] for r in table}
    assert len(keyed) == len(table), "duplicate keys in the table"
    return keyed


def log_actions(sink: DeltaSink, version: int) -> list[dict]:
    path = sink.path(TIMESERIES) / "_delta_log" / f"{version:020d}.json"
    return [json.loads(line) for line in path.read_text().splitlines()]


def file_ranges(sink: DeltaSink) -> dict[str, tuple[str, str]]:
    """path -> (min, max) timestamp statistics of every current file, as the Delta log writes them."""
    table = pa.table(DeltaTable(sink.path(TIMESERIES)).get_add_actions(flatten=True))
    return {
        p: (lo, hi)
        for p, lo, hi in zip(
            table["path"].to_pylist(), table["min.timestamp"].to_pylist(), table["max.timestamp"].to_pylist()
        )
    }


def day(sink: DeltaSink, hours: int) -> dict[tuple, float]:
    """`hours` hourly batches written as the runner writes them; returns the expected content."""
    expected: dict[tuple, float] = {}
    for hour in range(1, hours + 1):
        batch = hour_batch(hour)
        sink.merge(TIMESERIES, batch, reread_from=reread_from(hour))
        expected |= {(r["tag_webid"], r["timestamp"], 0): r["value"] for r in batch.to_pylist()}
    return expected


@pytest.mark.parametrize("append_new_rows", [True, False])
def test_hourly_batches_land_exactly_and_the_merge_rewrites_only_the_previous_lookback_files(
    tmp_path: Path, append_new_rows: bool
) -> None:
    sink = DeltaSink(tmp_path, append_new_rows=append_new_rows)
    expected = day(sink, 4)
    assert content(sink) == expected
    before = DeltaTable(sink.path(TIMESERIES)).version()
    overlapping = {p for p, (lo, hi) in file_ranges(sink).items() if hi >= reread_from(4) - dt.timedelta(seconds=1)}

    edited = frozenset((f"W{t:03d}", reread_from(4) + dt.timedelta(minutes=3)) for t in range(0, TAGS, 4))
    batch = hour_batch(5, edits=edited, late=2)
    result = sink.merge(TIMESERIES, batch, reread_from=reread_from(5))

    expected |= {(r["tag_webid"], r["timestamp"], 0): r["value"] for r in batch.to_pylist()}
    assert content(sink) == expected
    assert result.updated == len(edited)
    commits = [log_actions(sink, v) for v in range(before + 1, DeltaTable(sink.path(TIMESERIES)).version() + 1)]
    merges = [
        a["commitInfo"] for c in commits for a in c if "commitInfo" in a and a["commitInfo"]["operation"] == "MERGE"
    ]
    merged = {k: sum(m["operationMetrics"][k] for m in merges) for k in ("num_source_rows", "num_target_rows_copied")}
    late_rows = 2 * TAGS
    removed = {a["remove"]["path"] for c in commits for a in c if "remove" in a}
    assert removed
    assert removed <= overlapping  # the previous run's files, nothing older
    if append_new_rows:  # only the changed rows reach MERGE; the late ones are appended
        assert merged["num_source_rows"] == len(edited)
        assert merged["num_target_rows_copied"] < TAGS * 15  # the lookback files: ~10 minutes of every tag
    else:  # nothing is appended blindly: new and changed rows are MERGEd (one file per commit), unchanged dropped
        assert merged["num_source_rows"] == len(edited) + late_rows + TAGS * 60
        assert merged["num_target_rows_copied"] < TAGS * 75  # the previous batch's file, not the day


def test_a_reread_that_changes_nothing_commits_nothing(tmp_path: Path) -> None:
    sink = DeltaSink(tmp_path)
    day(sink, 3)
    version = DeltaTable(sink.path(TIMESERIES)).version()
    for hour in (2, 3):  # the same windows again (a retried run, a crash repair)
        result = sink.merge(TIMESERIES, hour_batch(hour), reread_from=reread_from(hour))
        assert (result.inserted, result.updated) == (0, 0)
    assert DeltaTable(sink.path(TIMESERIES)).version() == version


def test_lookback_rows_are_appended_into_files_of_their_own(tmp_path: Path) -> None:
    sink = DeltaSink(tmp_path)
    sink.merge(TIMESERIES, hour_batch(1), reread_from=reread_from(1))
    ranges = sorted(file_ranges(sink).values())
    assert len(ranges) == 2
    (_, body_max), (tail_min, _) = ranges
    assert dt.datetime.fromisoformat(str(body_max)) < reread_from(1) <= dt.datetime.fromisoformat(str(tail_min))


def test_nan_reread_is_not_a_change(tmp_path: Path) -> None:
    """SQL's IS DISTINCT FROM calls NaN changed: without the Arrow comparison every re-read would rewrite."""
    sink = DeltaSink(tmp_path)
    batch = hour_batch(1)
    batch = batch.set_column(batch.schema.get_field_index("value"), "value", pa.array([math.nan] * batch.num_rows))
    sink.merge(TIMESERIES, batch)
    version = DeltaTable(sink.path(TIMESERIES)).version()
    assert sink.merge(TIMESERIES, batch) == sink.merge(TIMESERIES, batch.slice(0, 5))
    assert DeltaTable(sink.path(TIMESERIES)).version() == version


@pytest.mark.slow  # builds a 12-hour day
def test_what_a_lookback_merge_reads_does_not_grow_with_the_day(tmp_path: Path) -> None:
    """Memory bound, structurally: the target rows read for the diff and the rows the MERGE copies are the
    previous run's lookback files, the same after 3 hours as after 12 (a day's partition is never read)."""
    read, copied = [], []
    for hours in (3, 12):
        sink = DeltaSink(tmp_path / str(hours))
        day(sink, hours)
        edited = frozenset({("W001", reread_from(hours) + dt.timedelta(minutes=1))})
        batch = hour_batch(hours + 1, edits=edited)
        table = DeltaTable(sink.path(TIMESERIES))
        overlap = batch.filter(pa.compute.less_equal(batch["timestamp"], rows.T0 + dt.timedelta(hours=hours)))
        read.append(_target_rows(table, TIMESERIES, overlap, list(TIMESERIES.keys)).num_rows)
        new, changed = split_changes(table, TIMESERIES, overlap)
        assert (new.num_rows, [c.num_rows for c in changed]) == (0, [1])
        sink.merge(TIMESERIES, batch, reread_from=reread_from(hours + 1))
        copied.append(DeltaTable(sink.path(TIMESERIES)).history(1)[0]["operationMetrics"]["num_target_rows_copied"])
    assert read[0] == read[1] <= TAGS * 11  # the lookback files: ~10 minutes of every tag
    assert copied[0] == copied[1] < TAGS * 11


def test_key_ranges_bound_the_merge_on_literals_both_engines_read() -> None:
    batch = hour_batch(2)
    ranges = merge_conditions.key_ranges(TIMESERIES, batch)
    assert ranges["tag_webid"] == ("W000", f"W{TAGS - 1:03d}")
    assert ranges["value_seq"] == (0, 0)
    low, high = ranges["timestamp"]
    assert (low, high) == (
        rows.T0 + dt.timedelta(minutes=50) - merge_conditions.STATISTICS_SLACK,
        rows.T0 + dt.timedelta(hours=2) + merge_conditions.STATISTICS_SLACK,
    )
    on = merge_conditions.merge_condition(TIMESERIES, {"partition_date": [dt.date(2025, 3, 1)]}, key_ranges=ranges)
    assert on.startswith(
        "t.\"partition_date\" IN (DATE '2025-03-01') AND t.\"tag_webid\" >= 'W000' AND t.\"tag_webid\" <= 'W019'"
        " AND t.\"timestamp\" >= TIMESTAMP '2025-03-01 00:49:59.999000+00:00'"
        " AND t.\"timestamp\" <= TIMESTAMP '2025-03-01 02:00:00.001000+00:00'"
    )
    assert merge_conditions.sql_literal(dt.datetime(2025, 3, 1, 1, 2, 3, 4)) is None  # naive: no safe spelling
    plus_one = dt.datetime(2025, 3, 1, 2, 0, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert merge_conditions.sql_literal(plus_one, timestamp_as_text=True) == "'2025-03-01 01:00:00.000000+00:00'"


def test_a_merge_never_fuses_lookback_files(tmp_path: Path) -> None:
    """Changed rows are MERGEd per file they live in: a commit whose tags straddle two lookback files rewrites
    each on its own, so the next commit does not rewrite a fused file again (the copies would snowball)."""
    sink = DeltaSink(tmp_path)
    first = hour_batch(1)
    half = pa.compute.less(first["tag_webid"], "W010")
    for part in (first.filter(half), first.filter(pa.compute.invert(half))):  # two commits: two lookback files
        sink.merge(TIMESERIES, part, reread_from=reread_from(1))
    edited = frozenset((f"W{t:03d}", reread_from(1) + dt.timedelta(minutes=5)) for t in range(TAGS))
    second = hour_batch(2, edits=edited)
    straddling = pa.compute.and_(
        pa.compute.greater_equal(second["tag_webid"], "W005"), pa.compute.less(second["tag_webid"], "W015")
    )
    for part in (second.filter(straddling), second.filter(pa.compute.invert(straddling))):
        sink.merge(TIMESERIES, part, reread_from=reread_from(2))
    assert content(sink)[("W007", reread_from(1) + dt.timedelta(minutes=5), 0)] == 7 + 55 / 100 + 1000
    actions = pa.table(DeltaTable(sink.path(TIMESERIES)).get_add_actions(flatten=True)).to_pylist()
    rewritten = [
        a
        for a in actions
        if a["max.timestamp"] <= rows.T0 + dt.timedelta(hours=1) and a["min.timestamp"] >= reread_from(1)
    ]
    assert sorted((a["min.tag_webid"], a["max.tag_webid"]) for a in rewritten) == [("W000", "W009"), ("W010", "W019")]


def test_keys_without_a_safe_literal_only_lose_pruning(tmp_path: Path) -> None:
    """A WebID with a quote has no literal both engines read: no range on it, the same rows all the same."""
    sink = DeltaSink(tmp_path)
    batch = hour_batch(1)
    odd = pa.array([w.replace("W00", "W'0") for w in batch["tag_webid"].to_pylist()])
    batch = batch.set_column(batch.schema.get_field_index("tag_webid"), "tag_webid", odd)
    assert "tag_webid" not in merge_conditions.range_filter(merge_conditions.key_ranges(TIMESERIES, batch), '"')[0]
    sink.merge(TIMESERIES, batch)
    changed = batch.set_column(batch.schema.get_field_index("value"), "value", pa.array([-7.5] * batch.num_rows))
    assert sink.merge(TIMESERIES, changed).updated == batch.num_rows
    assert sink.merge(TIMESERIES, changed) == sink.merge(TIMESERIES, changed.slice(0, 0))
    assert sorted(content(sink).values()) == [-7.5] * batch.num_rows


def test_a_sink_keeps_its_table_open_and_still_sees_every_other_writer(tmp_path: Path) -> None:
    """The sink re-reads only new log entries between its commits (re-opening a table of ~1,300 files cost
    ~50 ms, several times per commit); what other writers committed meanwhile is still seen."""
    mine, other = DeltaSink(tmp_path), DeltaSink(tmp_path)
    mine.merge(TIMESERIES, hour_batch(1), reread_from=reread_from(1))
    other.merge(TIMESERIES, hour_batch(2), reread_from=reread_from(2))  # the table moved on behind `mine`
    edited = frozenset({("W003", reread_from(2) + dt.timedelta(minutes=2))})
    again = hour_batch(2, edits=edited)
    assert mine.merge(TIMESERIES, again, reread_from=reread_from(2)) == WriteResult(inserted=0, updated=1)
    expected = {(r["tag_webid"], r["timestamp"], 0): r["value"] for h in (1, 2) for r in hour_batch(h).to_pylist()}
    expected |= {(r["tag_webid"], r["timestamp"], 0): r["value"] for r in again.to_pylist()}
    assert content(mine) == expected


def test_a_table_deleted_and_created_again_is_not_written_from_the_old_state(tmp_path: Path) -> None:
    sink = DeltaSink(tmp_path)
    for hour in (1, 2, 3):  # the old table reaches a later version than the new one will have
        sink.merge(TIMESERIES, hour_batch(hour), reread_from=reread_from(hour))
    shutil.rmtree(sink.path(TIMESERIES))
    DeltaSink(tmp_path).merge(TIMESERIES, hour_batch(5), reread_from=reread_from(5))  # someone re-creates it
    sink.merge(TIMESERIES, hour_batch(6), reread_from=reread_from(6))
    table = DeltaTable(sink.path(TIMESERIES))
    versions = sorted(int(p.stem) for p in (sink.path(TIMESERIES) / "_delta_log").glob("*.json"))
    assert versions == list(range(table.version() + 1))  # a log without gaps
    expected = {(r["tag_webid"], r["timestamp"], 0): r["value"] for h in (5, 6) for r in hour_batch(h).to_pylist()}
    assert content(sink) == expected
