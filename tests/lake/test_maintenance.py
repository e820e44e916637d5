"""maintain() over a real DeltaSink: fewer files, same rows, every table reported."""

from __future__ import annotations

from deltalake import DeltaTable

from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.maintenance import maintain
from osipi_connector.lake.schemas import ALL_TABLES, TIMESERIES, WATERMARKS
from osipi_connector.lake.sink import Optimized, Vacuumed
from tests.lake import rows


def test_maintain_every_table_keeps_rows_and_compacts(tmp_path):
    sink = DeltaSink(tmp_path)
    for seq in range(3):
        sink.merge(TIMESERIES, rows.timeseries(tags=2, days=2, per_day=3, seq=seq))
    sink.merge(WATERMARKS, rows.table(WATERMARKS, [rows.watermark("W000", rows.T0)]))
    before = sink.read(TIMESERIES).sort_by([(k, "ascending") for k in TIMESERIES.keys])
    files_before = len(DeltaTable(sink.path(TIMESERIES)).file_uris())

    results = {r.table: r for r in maintain(sink, retain_hours=0)}

    assert list(results) == [sink.table_name(spec) for spec in ALL_TABLES]
    assert all(r.error is None for r in results.values())
    series = results[sink.table_name(TIMESERIES)]
    assert series.optimized == Optimized(files_before, 2, ("tag_webid", "timestamp"))  # one file per day
    assert series.vacuumed.files_deleted >= files_before
    assert series.summary().startswith(f"{series.table}: compacted {files_before} -> 2 files + z-order, vacuumed ")
    assert len(DeltaTable(sink.path(TIMESERIES)).file_uris()) == 2
    assert sink.read(TIMESERIES).sort_by([(k, "ascending") for k in TIMESERIES.keys]).equals(before)
    missing = results[sink.table_name(ALL_TABLES[1])]
    assert (missing.skipped, missing.optimized) == ("table does not exist", None)


def test_a_later_optimize_counts_the_files_it_replaced(tmp_path):
    """delta-rs compacts, then Z-order rewrites every file: the figures are the files before and after."""
    sink = DeltaSink(tmp_path)
    sink.merge(TIMESERIES, rows.timeseries(tags=2, days=2, per_day=3))
    maintain(sink, [TIMESERIES])  # 2 files, one per day
    sink.merge(TIMESERIES, rows.timeseries(tags=2, days=1, per_day=3, seq=1))  # a third file, on day 1

    [result] = maintain(sink, [TIMESERIES])

    assert result.optimized == Optimized(3, 2, ("tag_webid", "timestamp"))


def test_one_broken_table_does_not_stop_the_others(tmp_path):
    sink = DeltaSink(tmp_path)
    sink.merge(TIMESERIES, rows.timeseries(tags=1, days=1, per_day=2))
    broken = sink.path(WATERMARKS) / "_delta_log"
    broken.mkdir(parents=True)
    (broken / "00000000000000000000.json").write_text("not json\n")

    results = {r.table: r for r in maintain(sink, [WATERMARKS, TIMESERIES], retain_hours=168)}

    assert results[sink.table_name(WATERMARKS)].error is not None
    assert results[sink.table_name(TIMESERIES)].error is None
    assert results[sink.table_name(TIMESERIES)].vacuumed == Vacuumed(files_deleted=0, retain_hours=168)
    assert results[sink.table_name(WATERMARKS)].summary().startswith(f"{sink.table_name(WATERMARKS)}: FAILED ")
