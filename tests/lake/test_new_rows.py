"""The append fast path of DeltaSink.merge: rows outside every file's key statistics are appended, the rest
MERGEd — and the table is the same as if everything had been MERGEd (no duplicate, no lost update)."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.new_rows import split_new_rows
from osipi_connector.lake.schemas import TIMESERIES
from osipi_connector.lake.sink import WriteResult
from tests.lake import rows

KEYS = list(TIMESERIES.keys)


@pytest.fixture
def sink(tmp_path) -> DeltaSink:
    return DeltaSink(tmp_path)


def operations(sink: DeltaSink) -> list[str]:
    """Commit operations, oldest first (CREATE TABLE, WRITE = append, MERGE)."""
    return [c["operation"] for c in reversed(DeltaTable(sink.path(TIMESERIES)).history())]


def content(sink: DeltaSink) -> list[dict]:
    table = DeltaTable(sink.path(TIMESERIES)).to_pyarrow_table()
    return table.drop_columns(["ingested_at", "run_id"]).sort_by([(k, "ascending") for k in KEYS]).to_pylist()


def unique_keys(sink: DeltaSink) -> bool:
    table = DeltaTable(sink.path(TIMESERIES)).to_pyarrow_table()
    return table.group_by(KEYS).aggregate([]).num_rows == table.num_rows


def with_column(table: pa.Table, name: str, values: list) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, pa.array(values, table.schema.field(name).type))


def test_a_first_load_is_appended_and_its_rerun_changes_nothing(sink) -> None:
    batch = rows.timeseries(tags=3, days=2, per_day=4)
    assert sink.merge(TIMESERIES, batch) == WriteResult(inserted=24, updated=0)
    assert operations(sink) == ["CREATE TABLE", "WRITE"]
    before = content(sink)
    assert sink.merge(TIMESERIES, batch) == WriteResult(inserted=0, updated=0)
    assert operations(sink) == ["CREATE TABLE", "WRITE"]  # everything matched: no commit at all
    assert content(sink) == before


def test_new_tags_and_later_times_are_appended_overlaps_merged(sink) -> None:
    sink.merge(TIMESERIES, rows.timeseries(tags=2, days=1, per_day=3))
    # same keys with changed values + a third tag + a later day: only the overlapping rows need MERGE
    changed = rows.timeseries(tags=3, days=2, per_day=3, value=5.0)
    result = sink.merge(TIMESERIES, changed)
    assert result == WriteResult(inserted=12, updated=6)
    assert operations(sink) == ["CREATE TABLE", "WRITE", "WRITE", "MERGE"]
    expected = DeltaSink(sink.root / "reference")
    expected.merge(TIMESERIES, changed)
    assert content(sink) == content(expected)
    assert unique_keys(sink)


def test_timestamp_statistics_in_milliseconds_do_not_hide_a_match(sink) -> None:
    """delta-rs keeps min/max timestamps in ms: a key 0.9 ms after the file's max must still be MERGEd."""
    base = rows.timeseries(tags=1, days=1, per_day=2)
    micro = [t + dt.timedelta(microseconds=900) for t in base["timestamp"].to_pylist()]
    first = with_column(base, "timestamp", micro)
    sink.merge(TIMESERIES, first)
    again = with_column(first, "value", [42.0, 43.0])
    assert sink.merge(TIMESERIES, again) == WriteResult(inserted=0, updated=2)
    assert [r["value"] for r in content(sink)] == [42.0, 43.0]


def test_long_tag_webids_with_truncated_statistics_still_match(sink) -> None:
    """String statistics are cut after a prefix; WebIDs differing only at their end must not be duplicated."""
    long = ["F1DP" + "x" * 80 + suffix for suffix in ("A", "Z")]
    batch = rows.timeseries(tags=2, days=1, per_day=2)
    batch = with_column(batch, "tag_webid", [long[0]] * 2 + [long[1]] * 2)
    sink.merge(TIMESERIES, batch)
    table = DeltaTable(sink.path(TIMESERIES))
    new, maybe = split_new_rows(table, TIMESERIES, batch)
    assert (new.num_rows, maybe.num_rows) == (0, 4)
    assert sink.merge(TIMESERIES, with_column(batch, "value", [9.0] * 4)) == WriteResult(inserted=0, updated=4)
    assert unique_keys(sink)


def test_split_is_exact_on_a_mixed_batch(sink) -> None:
    sink.merge(TIMESERIES, rows.timeseries(tags=2, days=1, per_day=4))
    batch = rows.timeseries(tags=4, days=2, per_day=4)
    new, maybe = split_new_rows(DeltaTable(sink.path(TIMESERIES)), TIMESERIES, batch)
    assert new.num_rows + maybe.num_rows == batch.num_rows
    existing = {(r["tag_webid"], r["timestamp"]) for r in rows.timeseries(tags=2, days=1, per_day=4).to_pylist()}
    assert existing <= {(r["tag_webid"], r["timestamp"]) for r in maybe.to_pylist()}
    assert not existing & {(r["tag_webid"], r["timestamp"]) for r in new.to_pylist()}
    # the file's box is exactly W000..W001 x day 1: other tags and the second day are appended
    assert {(r["tag_webid"], r["timestamp"]) for r in maybe.to_pylist()} == existing
    assert new.num_rows == 24


def test_a_crash_after_the_append_is_repaired_by_the_rerun(sink, monkeypatch) -> None:
    """The append commits, the MERGE of the overlapping rows dies: re-running the batch lands it once."""
    sink.merge(TIMESERIES, rows.timeseries(tags=1, days=1, per_day=3))
    batch = rows.timeseries(tags=3, days=1, per_day=3, value=7.0)

    def crash(*args, **kwargs):
        raise OSError("simulated crash between the append and the MERGE")

    with monkeypatch.context() as patched:
        patched.setattr(DeltaTable, "merge", crash)
        with pytest.raises(OSError, match="simulated crash"):
            sink.merge(TIMESERIES, batch)
    assert operations(sink)[-1] == "WRITE"  # the new tags were appended before the crash
    assert sink.merge(TIMESERIES, batch) == WriteResult(inserted=0, updated=3)
    expected = DeltaSink(sink.root / "reference")
    expected.merge(TIMESERIES, batch)
    assert content(sink) == content(expected)
    assert unique_keys(sink)


def test_append_can_be_switched_off_for_shared_tables(tmp_path) -> None:
    merging = DeltaSink(tmp_path, append_new_rows=False)
    batch = rows.timeseries(tags=2, days=1, per_day=3)
    assert merging.merge(TIMESERIES, batch) == WriteResult(inserted=6, updated=0)
    assert operations(merging) == ["CREATE TABLE", "MERGE"]
    assert merging.merge(TIMESERIES, batch) == WriteResult(inserted=0, updated=0)
    assert unique_keys(merging)
