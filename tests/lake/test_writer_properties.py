"""The Parquet files the local sink writes: standard ZSTD Parquet, the statistics the append fast path and
data skipping read, the same rows back; for appends, MERGEs and optimize alike."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import TAGS, TIMESERIES
from tests.lake import rows


def parquet_files(sink: DeltaSink, spec) -> list[pq.FileMetaData]:
    table = DeltaTable(sink.path(spec))
    return [pq.read_metadata(Path(sink.path(spec)) / f) for f in table.file_uris()]


def column(meta: pq.FileMetaData, name: str) -> pq.ColumnChunkMetaData:
    names = [meta.schema.column(i).name for i in range(meta.num_columns)]
    return meta.row_group(0).column(names.index(name))


def test_timeseries_files_are_zstd_with_key_statistics_only(tmp_path):
    sink = DeltaSink(tmp_path)
    batch = rows.timeseries(tags=3, days=2, per_day=4)
    sink.merge(TIMESERIES, batch)
    changed = rows.timeseries(tags=3, days=2, per_day=4, value=5.0)
    sink.merge(TIMESERIES, changed)  # rows inside the files' boxes: a real MERGE rewrites them
    sink.optimize(TIMESERIES)
    metas = parquet_files(sink, TIMESERIES)
    assert metas
    for meta in metas:
        for name in ("tag_webid", "timestamp", "value_seq", "tag_name", "ingested_at"):
            chunk = column(meta, name)
            assert chunk.compression == "ZSTD"
            assert chunk.is_stats_set, name
            assert chunk.statistics.has_min_max, name
        for name in ("value", "good", "units", "run_id"):
            assert not column(meta, name).is_stats_set, name  # no statistics where no query prunes by them
        assert not any("DICTIONARY" in e for e in column(meta, "value").encodings)  # rarely repeats: plain
        assert any("DICTIONARY" in e for e in column(meta, "tag_webid").encodings)  # repeats per row: dictionary
    actions = pa.table(DeltaTable(sink.path(TIMESERIES)).get_add_actions(flatten=True))
    for key in TIMESERIES.keys:  # what lake/new_rows.py reads
        assert actions[f"min.{key}"].null_count == 0
        assert actions[f"max.{key}"].null_count == 0
    back = sink.read(TIMESERIES).sort_by([(k, "ascending") for k in TIMESERIES.keys])
    want = changed.sort_by([(k, "ascending") for k in TIMESERIES.keys])
    assert back.select(["tag_webid", "timestamp", "value"]).equals(want.select(["tag_webid", "timestamp", "value"]))


def test_small_tables_keep_statistics_on_every_column(tmp_path):
    sink = DeltaSink(tmp_path)
    sink.merge(TAGS, rows.table(TAGS, [{"tag_webid": "W1", "tag_name": "T1", "span": 100.0, "ingested_at": rows.T0}]))
    (meta,) = parquet_files(sink, TAGS)
    for name in ("tag_webid", "tag_name", "span", "ingested_at"):
        assert column(meta, name).compression == "ZSTD"
        assert column(meta, name).is_stats_set, name
