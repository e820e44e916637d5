"""maintain() over a real DeltaSink: fewer files, same rows, every table reported."""

from __future__ import annotations

from deltalake import DeltaTable

from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.maintenance import maintain
from osipi_connector.lake.schemas import ALL_TABLES, TIMESERIES, WATERMARKS
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
    assert series.optimize["compact"]["numFilesRemoved"] == files_before
    assert series.vacuum["files_deleted"] >= files_before
    assert len(DeltaTable(sink.path(TIMESERIES)).file_uris()) == 2  # one file per day
    assert sink.read(TIMESERIES).sort_by([(k, "ascending") for k in TIMESERIES.keys]).equals(before)
    assert results[sink.table_name(ALL_TABLES[1])].optimize == {"skipped": "table does not exist"}


def test_one_broken_table_does_not_stop_the_others(tmp_path):
    sink = DeltaSink(tmp_path)
    sink.merge(TIMESERIES, rows.timeseries(tags=1, days=1, per_day=2))
    broken = sink.path(WATERMARKS) / "_delta_log"
    broken.mkdir(parents=True)
    (broken / "00000000000000000000.json").write_text("not json\n")

    results = {r.table: r for r in maintain(sink, [WATERMARKS, TIMESERIES], retain_hours=168)}

    assert results[sink.table_name(WATERMARKS)].error is not None
    assert results[sink.table_name(TIMESERIES)].error is None
    assert results[sink.table_name(TIMESERIES)].vacuum == {"files_deleted": 0, "retain_hours": 168}
