"""DeltaSink on real Delta tables under tmp_path (delta-rs), read back through an independent DeltaTable."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

from osipi_connector.lake import merge_conditions
from osipi_connector.lake.conflict_retry import ConflictRetry
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import ALL_TABLES, EVENT_FRAMES, RUN_METRICS, TAGS, TIMESERIES, WATERMARKS
from osipi_connector.lake.sink import Location, WriteResult
from osipi_connector.lake.validate import DuplicateKeyError, SchemaMismatchError
from tests.lake import rows

KEYS = list(TIMESERIES.keys)


@pytest.fixture
def sink(tmp_path) -> DeltaSink:
    return DeltaSink(tmp_path, Location(catalog="main", schema="bronze", checkpoint_schema="checkpoints"))


def on_disk(sink: DeltaSink, spec) -> pa.Table:
    """The table as an independent reader sees it, sorted by key for comparisons."""
    return DeltaTable(sink.path(spec)).to_pyarrow_table().sort_by([(k, "ascending") for k in spec.keys])


def test_tables_live_under_catalog_schema_table(sink, tmp_path):
    for spec in ALL_TABLES:
        sink.ensure(spec)
        sink.ensure(spec)  # idempotent
    assert (tmp_path / "main" / "bronze" / "pi_timeseries" / "_delta_log").is_dir()
    assert (tmp_path / "main" / "checkpoints" / "pi_watermarks" / "_delta_log").is_dir()
    assert DeltaTable(sink.path(TIMESERIES)).metadata().partition_columns == ["partition_date"]
    assert DeltaTable(sink.path(TIMESERIES)).version() == 0


def test_merge_twice_gives_identical_table_without_duplicates(sink):
    batch = rows.timeseries(tags=3, days=2, per_day=4)
    first = sink.merge(TIMESERIES, batch)
    version = DeltaTable(sink.path(TIMESERIES)).version()
    before = on_disk(sink, TIMESERIES)
    second = sink.merge(TIMESERIES, batch)

    assert first == WriteResult(inserted=24, updated=0)
    assert second == WriteResult(inserted=0, updated=0)
    after = on_disk(sink, TIMESERIES)
    assert after.equals(before)
    assert after.num_rows == 24
    assert after.group_by(KEYS).aggregate([]).num_rows == 24
    assert DeltaTable(sink.path(TIMESERIES)).version() == version  # an unchanged re-run does not even commit
    assert after.select(batch.column_names).equals(batch.sort_by([(k, "ascending") for k in KEYS]))


def test_changed_values_are_updated_in_place(sink):
    sink.merge(TIMESERIES, rows.timeseries(tags=2, days=1, per_day=3, value=1.0, run_id="run-1"))
    result = sink.merge(TIMESERIES, rows.timeseries(tags=2, days=1, per_day=3, value=5.0, run_id="run-2"))

    table = on_disk(sink, TIMESERIES)
    assert result == WriteResult(inserted=0, updated=6)
    assert table.num_rows == 6
    assert sorted(set(table["value"].to_pylist())) == [5.0, 6.0]
    assert set(table["run_id"].to_pylist()) == {"run-2"}


def test_lineage_only_difference_keeps_first_ingestion(sink):
    sink.merge(TIMESERIES, rows.timeseries(tags=1, days=1, per_day=2, run_id="run-1"))
    result = sink.merge(TIMESERIES, rows.timeseries(tags=1, days=1, per_day=2, run_id="run-2"))
    assert result == WriteResult(inserted=0, updated=0)
    assert set(on_disk(sink, TIMESERIES)["run_id"].to_pylist()) == {"run-1"}


def test_duplicate_timestamps_with_distinct_value_seq_are_kept(sink):
    batch = pa.concat_tables(
        [
            rows.timeseries(tags=1, days=1, per_day=2, value=1.0, seq=0),
            rows.timeseries(tags=1, days=1, per_day=2, value=7.0, seq=1),
        ]
    )
    sink.merge(TIMESERIES, batch)
    sink.merge(TIMESERIES, batch)

    table = on_disk(sink, TIMESERIES)
    assert table.num_rows == 4
    assert table.select(["timestamp", "value_seq", "value"]).to_pylist() == [
        {"timestamp": rows.T0, "value_seq": 0, "value": 1.0},
        {"timestamp": rows.T0, "value_seq": 1, "value": 7.0},
        {"timestamp": rows.T0 + dt.timedelta(minutes=10), "value_seq": 0, "value": 1.0},
        {"timestamp": rows.T0 + dt.timedelta(minutes=10), "value_seq": 1, "value": 7.0},
    ]


def test_duplicate_keys_in_one_batch_are_rejected(sink):
    batch = rows.timeseries(tags=1, days=1, per_day=2)
    with pytest.raises(DuplicateKeyError, match=r"pi_timeseries: 2 key\(s\).*W000.*de-duplicate"):
        sink.merge(TIMESERIES, pa.concat_tables([batch, batch]))
    assert not sink.exists(TIMESERIES)


def test_merge_prunes_untouched_partitions(sink):
    sink.merge(TIMESERIES, rows.timeseries(tags=2, days=3, per_day=3))
    files_before = set(DeltaTable(sink.path(TIMESERIES)).file_uris())
    day2 = rows.timeseries(tags=2, days=3, per_day=3, value=9.0)
    day2 = day2.filter(pc.equal(day2["partition_date"], pa.scalar(dt.date(2025, 3, 2))))

    sink.merge(TIMESERIES, day2)

    table = DeltaTable(sink.path(TIMESERIES))
    metrics = table.history(1)[0]["operationMetrics"]
    assert metrics["num_target_files_skipped_during_scan"] == 2  # the two other days were never read
    assert metrics["num_target_files_scanned"] == 1
    files_after = set(table.file_uris())
    untouched = {f for f in files_before if "partition_date=2025-03-02" not in f}
    assert untouched <= files_after  # other days' files were not rewritten
    values = on_disk(sink, TIMESERIES).group_by("partition_date").aggregate([("value", "max")])
    by_day = dict(zip(values["partition_date"].to_pylist(), values["value_max"].to_pylist()))
    assert by_day == {dt.date(2025, 3, 1): 2.0, dt.date(2025, 3, 2): 10.0, dt.date(2025, 3, 3): 2.0}


def test_partition_filter_reads_one_day(sink):
    sink.merge(TIMESERIES, rows.timeseries(tags=2, days=3, per_day=3))
    one_day = DeltaTable(sink.path(TIMESERIES)).to_pyarrow_table(filters=[("partition_date", "=", dt.date(2025, 3, 3))])
    assert one_day.num_rows == 6
    assert set(one_day["partition_date"].to_pylist()) == {dt.date(2025, 3, 3)}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda t: t.drop_columns(["units"]), r"pi_timeseries: columns do not match.*missing \['units'\]"),
        (lambda t: t.append_column("extra", pa.array([1] * t.num_rows)), r"unexpected \['extra'\]"),
        (
            lambda t: t.set_column(4, "value", pa.array(["x"] * t.num_rows)),
            r"column 'value' has type string, expected double",
        ),
        (
            lambda t: t.set_column(2, "timestamp", t["timestamp"].cast(pa.timestamp("us"))),
            r"column 'timestamp' holds timezone-naive timestamps",
        ),
        (
            lambda t: t.set_column(0, "tag_webid", pa.nulls(t.num_rows, pa.string())),
            r"column 'tag_webid' is NOT NULL but has 4 null",
        ),
    ],
)
def test_schema_mismatch_is_a_clear_error_and_writes_nothing(sink, change, message):
    sink.merge(TIMESERIES, rows.timeseries(tags=1, days=1, per_day=4))
    version = DeltaTable(sink.path(TIMESERIES)).version()
    with pytest.raises(SchemaMismatchError, match=message):
        sink.merge(TIMESERIES, change(rows.timeseries(tags=1, days=1, per_day=4, value=3.0)))
    assert DeltaTable(sink.path(TIMESERIES)).version() == version


def test_compatible_types_are_cast_to_the_spec(sink):
    batch = rows.timeseries(tags=1, days=1, per_day=2)
    widened = batch.set_column(0, "tag_webid", batch["tag_webid"].cast(pa.large_string())).set_column(
        2, "timestamp", batch["timestamp"].cast(pa.timestamp("ns", tz="Europe/Paris"))
    )
    sink.merge(TIMESERIES, widened.select(list(reversed(widened.column_names))))
    table = sink.read(TIMESERIES)
    assert table.schema.equals(TIMESERIES.schema)
    assert table.sort_by("timestamp")["timestamp"].to_pylist() == batch["timestamp"].to_pylist()


def test_existing_table_with_another_schema_is_refused(sink, tmp_path):
    other = pa.schema([pa.field("tag_webid", pa.string()), pa.field("value", pa.string())])
    DeltaTable.create(sink.path(TIMESERIES), other)
    with pytest.raises(
        SchemaMismatchError,
        match=r"pi_timeseries at .* does not match its spec: .*value \(string on disk, double in spec\)",
    ):
        sink.merge(TIMESERIES, rows.timeseries(tags=1, days=1, per_day=1))


def test_read_missing_table_is_empty_with_schema(sink):
    assert sink.read(WATERMARKS).schema.equals(WATERMARKS.schema)
    assert sink.read(WATERMARKS).num_rows == 0
    assert sink.read(WATERMARKS, columns=["item_id", "high_watermark"]).column_names == ["item_id", "high_watermark"]
    with pytest.raises(SchemaMismatchError, match=r"no column\(s\) \['nope'\]"):
        sink.read(WATERMARKS, columns=["nope"])


def test_watermarks_round_trip_and_advance(sink):
    t1, t2 = rows.T0 + dt.timedelta(hours=1), rows.T0 + dt.timedelta(hours=2)
    sink.merge(WATERMARKS, rows.table(WATERMARKS, [rows.watermark("W000", t1), rows.watermark("W001", t1)]))
    result = sink.merge(WATERMARKS, rows.table(WATERMARKS, [rows.watermark("W000", t2, run_id="run-2")]))

    table = sink.read(WATERMARKS).sort_by("item_id")
    assert result == WriteResult(inserted=0, updated=1)
    assert table.schema.equals(WATERMARKS.schema)
    assert table.select(["item_id", "high_watermark", "last_run_id"]).to_pylist() == [
        {"item_id": "W000", "high_watermark": t2, "last_run_id": "run-2"},
        {"item_id": "W001", "high_watermark": t1, "last_run_id": "run-1"},
    ]


def test_run_metrics_append_round_trip(sink):
    sink.append(RUN_METRICS, rows.run_metrics("r1"))
    sink.append(RUN_METRICS, rows.run_metrics("r2"))
    table = sink.read(RUN_METRICS).sort_by("run_id")
    assert table.schema.equals(RUN_METRICS.schema)
    assert table["run_id"].to_pylist() == ["r1", "r2"]
    assert table["errors"].to_pylist() == [["W001: HTTP 502 after 3 retries"]] * 2
    assert table.slice(0, 1).to_pylist() == rows.run_metrics("r1").to_pylist()


def test_event_frame_closing_later_is_updated_not_duplicated(sink):
    frame = {
        "event_frame_id": "ef-1",
        "event_frame_webid": "F1",
        "event_name": "Trip",
        "start_time": rows.T0,
        "end_time": None,
        "is_in_progress": True,
        "referenced_element_webids": ["E1", "E2"],
        "categories": ["Downtime"],
        "af_database_webid": "D1",
        "ingested_at": rows.T0,
    }
    sink.merge(EVENT_FRAMES, rows.table(EVENT_FRAMES, [frame]))
    closed = {**frame, "end_time": rows.T0 + dt.timedelta(hours=1), "is_in_progress": False}
    assert sink.merge(EVENT_FRAMES, rows.table(EVENT_FRAMES, [closed])) == WriteResult(inserted=0, updated=1)
    assert sink.read(EVENT_FRAMES).to_pylist() == rows.table(EVENT_FRAMES, [closed]).to_pylist()


def test_optimize_and_vacuum_keep_the_same_rows(sink):
    for seq in range(3):  # inserts in three commits -> three files per partition
        sink.merge(TIMESERIES, rows.timeseries(tags=2, days=2, per_day=2, seq=seq))
    before = on_disk(sink, TIMESERIES)
    files_before = len(DeltaTable(sink.path(TIMESERIES)).file_uris())

    metrics = sink.optimize(TIMESERIES)
    vacuumed = sink.vacuum(TIMESERIES, retain_hours=0)

    assert metrics["compact"]["numFilesRemoved"] > 0
    assert "z_order" in metrics
    assert len(DeltaTable(sink.path(TIMESERIES)).file_uris()) < files_before
    assert vacuumed["files_deleted"] > 0
    assert on_disk(sink, TIMESERIES).equals(before)


def test_maintenance_on_missing_table_is_skipped(sink):
    assert sink.optimize(TAGS) == {"skipped": "table does not exist"}
    assert sink.vacuum(TAGS) == {"skipped": "table does not exist"}


@pytest.mark.parametrize("bad", ["../etc", "a/b", "", "main.x"])
def test_location_names_that_are_not_folder_names_are_refused(tmp_path, bad):
    with pytest.raises(ValueError, match=r"unity_catalog\.schema .* cannot name a local folder"):
        DeltaSink(tmp_path, Location(schema=bad))


def test_stale_concurrent_merge_fails_cleanly_instead_of_corrupting(sink):
    """What delta-rs does when two writers race (the reason for lake/conflict_retry.py)."""
    sink.merge(TIMESERIES, rows.timeseries(tags=2, days=1, per_day=3))
    first, second = DeltaTable(sink.path(TIMESERIES)), DeltaTable(sink.path(TIMESERIES))  # same version
    condition = merge_conditions.merge_condition(TIMESERIES)

    def merge(table, value):
        source = rows.timeseries(tags=2, days=1, per_day=3, value=value)
        merger = table.merge(source, condition, source_alias="s", target_alias="t")
        return merger.when_matched_update_all().when_not_matched_insert_all().execute()

    merge(first, 5.0)
    with pytest.raises(CommitFailedError):
        merge(second, 7.0)
    table = on_disk(sink, TIMESERIES)
    assert table.num_rows == 6
    assert sorted(set(table["value"].to_pylist())) == [5.0, 6.0]


def test_concurrent_merges_from_two_threads_all_land(sink):
    sink.merge(TIMESERIES, rows.timeseries(tags=4, days=1, per_day=2))
    batches = [rows.timeseries(tags=4, days=1, per_day=2, seq=seq) for seq in range(1, 9)]

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda batch: sink.merge(TIMESERIES, batch), batches))

    assert all(r == WriteResult(inserted=8, updated=0) for r in results)
    table = on_disk(sink, TIMESERIES)
    assert table.num_rows == 9 * 8
    assert table.group_by(KEYS).aggregate([]).num_rows == 9 * 8


def _merge_batches(root: str, seqs: list[int]) -> list[WriteResult]:
    """Runs in another process: merge one batch per value_seq, re-running a write that lost a commit race."""
    sink = ConflictRetry(DeltaSink(root))
    return [sink.merge(TIMESERIES, rows.timeseries(tags=4, days=1, per_day=2, seq=seq)) for seq in seqs]


@pytest.mark.integration
def test_two_writer_processes_racing_on_one_table_all_land(tmp_path):
    DeltaSink(tmp_path).merge(TIMESERIES, rows.timeseries(tags=4, days=1, per_day=2))
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
        results = list(pool.map(_merge_batches, [str(tmp_path)] * 2, [[1, 2, 3, 4], [5, 6, 7, 8]]))

    assert all(r == WriteResult(inserted=8, updated=0) for batch in results for r in batch)
    table = DeltaTable(DeltaSink(tmp_path).path(TIMESERIES)).to_pyarrow_table()
    assert table.num_rows == 9 * 8
    assert table.group_by(KEYS).aggregate([]).num_rows == 9 * 8


def test_the_cached_table_object_is_opened_afresh_every_reopen_after_versions(sink, monkeypatch):
    """A delta-rs table object slows down with every commit it has seen (a long backfill in one process
    crawled): the sink opens it afresh once it has seen REOPEN_AFTER_VERSIONS commits; rows stay exact."""
    monkeypatch.setattr("osipi_connector.lake.delta_sink.REOPEN_AFTER_VERSIONS", 3)
    path = sink.path(TIMESERIES)
    objects, versions = [], []  # the sink's table object and the table's version after each merge
    for i in range(8):
        sink.merge(TIMESERIES, rows.timeseries(tags=2, days=1, per_day=3, value=float(i), run_id=f"run-{i}"))
        objects.append(sink._written[path][0])
        versions.append(DeltaTable(path).version())
    table = on_disk(sink, TIMESERIES)
    assert table.num_rows == 6
    assert sorted(set(table["value"].to_pylist())) == [7.0, 8.0]  # tag index + the last value
    assert versions[-1] >= 8  # 8 merges, a commit or more each
    assert len({id(o) for o in objects}) >= 3  # opened afresh at least twice (objects kept alive: ids unique)
