"""SparkSink on real Delta Lake (local Spark 4.0 + delta-spark 4.0, tests/sparksession.py): rows in tables.

Each test gets schemas of its own (`spark_location`) whose tables sit where `DeltaSink(tmp_path, location)`
keeps them, so the same tables can be read and written by delta-rs too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from contextlib import contextmanager

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from osipi_connector import cli
from osipi_connector.lake import spark_sql
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.maintenance import maintain
from osipi_connector.lake.schemas import ALL_TABLES, EVENT_FRAMES, RUN_METRICS, TIMESERIES, WATERMARKS
from osipi_connector.lake.sink import Location, Optimized, WriteResult
from osipi_connector.lake.spark_schema import spark_schema
from osipi_connector.lake.spark_sink import SparkSink
from osipi_connector.lake.validate import DuplicateKeyError, SchemaMismatchError
from tests.lake import rows
from tests.sparksession import StatementSpy

KEYS = [(k, "ascending") for k in TIMESERIES.keys]


def read(spark, name: str, spec=TIMESERIES) -> pa.Table:
    """The table as Spark reads it, in the spec's schema, sorted by its keys."""
    table = spark.table(name).select(*spec.schema.names).toArrow().cast(spec.schema)
    return table.sort_by([(k, "ascending") for k in spec.keys])


def detail(spark, name: str):
    return spark.sql(f"DESCRIBE DETAIL {name}").collect()[0]


@contextmanager
def short_retention(spark):
    """VACUUM RETAIN 0 HOURS, as the tests need (Delta refuses < 168 h by default, as Databricks does)."""
    key = "spark.databricks.delta.retentionDurationCheck.enabled"
    spark.conf.set(key, "false")
    try:
        yield
    finally:
        spark.conf.unset(key)


def test_three_part_names_as_users_write_them(spark):
    sink = SparkSink(spark, Location())  # main.bronze / main.checkpoints, the config's defaults
    try:
        sink.merge(TIMESERIES, rows.timeseries(tags=2, days=2, per_day=3))
        sink.merge(WATERMARKS, rows.table(WATERMARKS, [rows.watermark("W000", rows.T0)]))

        assert spark.sql("SELECT count(*) FROM main.bronze.pi_timeseries").collect()[0][0] == 12
        assert spark.table("main.checkpoints.pi_watermarks").select("item_id").collect() == [("W000",)]
        assert sink.table_name(TIMESERIES) == "main.bronze.pi_timeseries"
        assert detail(spark, "main.bronze.pi_timeseries").format == "delta"
    finally:
        spark.sql("DROP TABLE IF EXISTS main.bronze.pi_timeseries")
        spark.sql("DROP TABLE IF EXISTS main.checkpoints.pi_watermarks")


def test_every_table_is_created_with_its_schema_partitioning_and_properties(spark, spark_location):
    sink = SparkSink(spark, spark_location)
    for spec in ALL_TABLES:
        sink.ensure(spec)
        name = sink.table_name(spec)
        assert spark.table(name).schema == spark_schema(spec.schema), spec.name
        table = detail(spark, name)
        assert (table.format, table.partitionColumns) == ("delta", list(spec.partition_by)), spec.name
        assert table.properties["delta.autoOptimize.optimizeWrite"] == "true"
        assert sink.exists(spec)
    comment = spark.sql(f"DESCRIBE TABLE EXTENDED {sink.table_name(TIMESERIES)}").where("col_name = 'Comment'")
    assert comment.collect()[0]["data_type"] == TIMESERIES.comment


def test_deletion_vectors_stay_off_even_where_new_tables_get_them_by_default(spark, spark_location, tmp_path):
    # what a Databricks workspace's "auto-enable deletion vectors" setting does to every CREATE TABLE
    default = "spark.databricks.delta.properties.defaults.enableDeletionVectors"
    spark.conf.set(default, "true")
    try:
        plain = f"`{spark_location.catalog}`.`{spark_location.schema}`.plain"
        spark.sql(f"CREATE TABLE {plain} (x INT) USING DELTA")
        assert "deletionVectors" in detail(spark, plain).tableFeatures  # the default does take effect...
        sink = SparkSink(spark, spark_location)
        sink.merge(TIMESERIES, rows.timeseries(tags=2, days=1, per_day=3))
    finally:
        spark.conf.unset(default)

    table = detail(spark, sink.table_name(TIMESERIES))
    assert "deletionVectors" not in table.tableFeatures  # ...but not on the sink's tables
    assert table.minReaderVersion == 1
    assert {k: table.properties.get(k) for k in spark_sql.TABLE_PROPERTIES} == {
        "delta.autoOptimize.optimizeWrite": "true",
        "delta.autoOptimize.autoCompact": "true",
        "delta.enableDeletionVectors": "false",
    }
    changed = rows.timeseries(tags=2, days=1, per_day=3, value=7.0)  # so delta-rs still reads and writes them
    assert DeltaSink(tmp_path, spark_location).merge(TIMESERIES, changed) == WriteResult(inserted=0, updated=6)
    assert read(spark, sink.table_name(TIMESERIES)).equals(changed.sort_by(KEYS))


def test_comments_with_quotes_and_backslashes_reach_the_table(spark, spark_location):
    spec = dataclasses.replace(RUN_METRICS, comment="It's one row per run", column_comments={"errors": "failed\\why"})
    sink = SparkSink(spark, spark_location)
    sink.ensure(spec)
    described = {r.col_name: r for r in spark.sql(f"DESCRIBE TABLE EXTENDED {sink.table_name(spec)}").collect()}
    assert described["Comment"].data_type == "It's one row per run"
    assert described["errors"].comment == "failed\\why"


def test_merge_inserts_then_a_rerun_changes_nothing(spark, spark_location):
    sink = SparkSink(spark, spark_location)
    name = sink.table_name(TIMESERIES)
    first = rows.timeseries(tags=2, days=2, per_day=3)

    assert sink.merge(TIMESERIES, first) == WriteResult(inserted=12, updated=0)
    files = sorted(spark.table(name).inputFiles())
    rerun = rows.timeseries(tags=2, days=2, per_day=3, run_id="run-2")  # same data, another run's lineage
    assert sink.merge(TIMESERIES, rerun) == WriteResult(inserted=0, updated=0)

    assert read(spark, name).equals(first.sort_by(KEYS))  # the first ingestion's lineage is kept
    assert sorted(spark.table(name).inputFiles()) == files  # no file rewritten


def test_changed_values_are_updated_in_place(spark, spark_location):
    sink = SparkSink(spark, spark_location)
    sink.merge(TIMESERIES, rows.timeseries(tags=2, days=1, per_day=3))
    changed = rows.timeseries(tags=2, days=1, per_day=3, value=5.0)

    assert sink.merge(TIMESERIES, changed) == WriteResult(inserted=0, updated=6)
    assert read(spark, sink.table_name(TIMESERIES)).equals(changed.sort_by(KEYS))


def test_duplicate_timestamps_survive_by_value_seq(spark, spark_location):
    sink = SparkSink(spark, spark_location)
    sink.merge(TIMESERIES, rows.timeseries(tags=1, days=1, per_day=2, seq=0, value=1.0))
    sink.merge(TIMESERIES, rows.timeseries(tags=1, days=1, per_day=2, seq=1, value=2.0))

    stored = read(spark, sink.table_name(TIMESERIES))
    assert stored.num_rows == 4
    assert stored.select(["timestamp", "value_seq", "value"]).to_pylist()[:2] == [
        {"timestamp": rows.T0, "value_seq": 0, "value": 1.0},
        {"timestamp": rows.T0, "value_seq": 1, "value": 2.0},
    ]


def test_bad_batches_change_no_table(spark, spark_location):
    sink = SparkSink(StatementSpy(spark), spark_location)
    batch = rows.timeseries(tags=1, days=1, per_day=2)
    with pytest.raises(DuplicateKeyError):
        sink.merge(TIMESERIES, pa.concat_tables([batch, batch]))
    assert sink.merge(TIMESERIES, batch.slice(0, 0)) == WriteResult(inserted=0, updated=0)
    assert sink.spark.statements == []
    assert not sink.exists(TIMESERIES)


def test_watermarks_and_run_metrics_round_trip(spark, spark_location):
    sink = SparkSink(spark, spark_location)
    assert sink.read(WATERMARKS).num_rows == 0  # a missing table reads empty (and is created)
    marks = rows.table(WATERMARKS, [rows.watermark("W000", rows.T0), rows.watermark("W001", rows.T0)])
    sink.merge(WATERMARKS, marks)
    later = rows.table(WATERMARKS, [rows.watermark("W001", rows.T0 + dt.timedelta(hours=1), run_id="run-2")])
    assert sink.merge(WATERMARKS, later) == WriteResult(inserted=0, updated=1)
    sink.append(RUN_METRICS, rows.run_metrics("r1"))
    sink.append(RUN_METRICS, rows.run_metrics("r2"))

    stored = sink.read(WATERMARKS).sort_by("item_id")
    assert stored.column("high_watermark").to_pylist() == [rows.T0, rows.T0 + dt.timedelta(hours=1)]
    assert sink.read(WATERMARKS, columns=["item_id"]).to_pylist() in (
        [{"item_id": "W000"}, {"item_id": "W001"}],
        [{"item_id": "W001"}, {"item_id": "W000"}],
    )
    metrics = sink.read(RUN_METRICS).sort_by("run_id")
    assert metrics.column("run_id").to_pylist() == ["r1", "r2"]
    assert metrics.slice(0, 1).equals(rows.run_metrics("r1"))


def test_event_frames_with_lists_round_trip(spark, spark_location):
    sink = SparkSink(spark, spark_location)
    frame = {
        "event_frame_id": "ef-1",
        "event_frame_webid": "F1",
        "event_name": "Trip été",
        "start_time": rows.T0,
        "is_in_progress": True,
        "referenced_element_webids": ["E1", "E2"],
        "categories": [],
        "af_database_webid": "D1",
        "ingested_at": rows.T0,
    }
    sink.merge(EVENT_FRAMES, rows.table(EVENT_FRAMES, [frame]))
    closed = frame | {"end_time": rows.T0 + dt.timedelta(hours=1), "is_in_progress": False}
    assert sink.merge(EVENT_FRAMES, rows.table(EVENT_FRAMES, [closed])) == WriteResult(inserted=0, updated=1)
    assert sink.read(EVENT_FRAMES).equals(rows.table(EVENT_FRAMES, [closed]))


def test_existing_table_with_other_columns_is_refused_before_writing(spark, spark_location):
    sink = SparkSink(spark, spark_location)
    name = sink.table_name(WATERMARKS)
    spark.sql(f"CREATE TABLE {name} (dataset STRING, item_id STRING, high_watermark STRING) USING DELTA")
    spark.sql(f"INSERT INTO {name} VALUES ('timeseries', 'W000', 'yesterday')")
    with pytest.raises(
        SchemaMismatchError,
        match=r"pi_watermarks does not match its spec: item_name \(missing\); .*"
        r"high_watermark \(string in Unity Catalog, timestamp in spec\)",
    ):
        sink.merge(WATERMARKS, rows.table(WATERMARKS, [rows.watermark("W000", rows.T0)]))
    assert spark.table(name).collect() == [("timeseries", "W000", "yesterday")]


def test_a_failed_statement_still_drops_the_source_view(spark, spark_location):
    spy = StatementSpy(spark, fail_on="MERGE")
    with pytest.raises(RuntimeError, match="simulated failure"):
        SparkSink(spy, spark_location).merge(TIMESERIES, rows.timeseries(tags=1, days=1, per_day=1))
    [(_, source)] = spy.merged(TIMESERIES)
    assert source.num_rows == 1
    assert not [v for v in spark.catalog.listTables() if v.name.startswith("osipi_src_")]


def test_merge_dataframe_lands_rows_whatever_the_column_order(spark, spark_location):
    sink = SparkSink(spark, spark_location)
    batch = rows.timeseries(tags=2, days=2, per_day=3)
    df = sink.dataframe(TIMESERIES, batch)

    days = {"partition_date": [rows.T0.date(), rows.T0.date() + dt.timedelta(days=1)]}  # prune to these
    result = sink.merge_dataframe(TIMESERIES, df.select(*reversed(df.columns)), days)
    assert result == WriteResult(inserted=12, updated=0)
    assert sink.merge_dataframe(TIMESERIES, df) == WriteResult(inserted=0, updated=0)  # unpruned re-run
    assert read(spark, sink.table_name(TIMESERIES)).equals(batch.sort_by(KEYS))


def test_merge_dataframe_refuses_a_dataframe_unlike_the_spec(spark, spark_location):
    sink = SparkSink(spark, spark_location)
    df = sink.dataframe(TIMESERIES, rows.timeseries(tags=1, days=1, per_day=1))
    wrong = df.drop("units").withColumn("value_seq", df["value_seq"].cast("string"))
    with pytest.raises(SchemaMismatchError, match=r"value_seq \(string in the DataFrame, int in spec\); units"):
        sink.merge_dataframe(TIMESERIES, wrong)
    assert not sink.exists(TIMESERIES)


def test_maintain_compacts_zorders_and_vacuums_with_real_figures(spark, spark_location):
    sink = SparkSink(spark, spark_location)
    for seq in range(3):
        sink.merge(TIMESERIES, rows.timeseries(tags=2, days=2, per_day=3, seq=seq))
    name = sink.table_name(TIMESERIES)
    before = read(spark, name)
    files_before = detail(spark, name).numFiles

    with short_retention(spark):
        results = {r.table: r for r in maintain(sink, [TIMESERIES, WATERMARKS], retain_hours=0)}

    series = results[name]
    assert series.error is None
    assert series.optimized == Optimized(files_before, 2, ("tag_webid", "timestamp"))  # one file per day
    assert series.vacuumed.files_deleted == files_before
    assert series.summary().startswith(f"{name}: compacted {files_before} -> 2 files + z-order, vacuumed ")
    assert detail(spark, name).numFiles == 2
    assert read(spark, name).equals(before)
    history = spark.sql(f"DESCRIBE HISTORY {name}").select("operation").collect()
    assert [r.operation for r in history[:3]] == ["VACUUM END", "VACUUM START", "OPTIMIZE"]
    marks = results[sink.table_name(WATERMARKS)]  # created empty by maintenance: nothing to do
    assert (marks.optimized, marks.vacuumed.files_deleted) == (Optimized(0, 0), 0)


# --- the other engine on the same tables: delta-rs (DeltaSink) reads and writes what Spark made, and back ---


def test_delta_rs_reads_and_writes_the_tables_spark_created(spark, spark_location, tmp_path):
    spark_sink, delta_sink = SparkSink(spark, spark_location), DeltaSink(tmp_path, spark_location)
    day1 = rows.timeseries(tags=2, days=1, per_day=3)
    spark_sink.merge(TIMESERIES, day1)
    spark_sink.merge(WATERMARKS, rows.table(WATERMARKS, [rows.watermark("W000", rows.T0)]))

    assert delta_sink.read(TIMESERIES).sort_by(KEYS).equals(day1.sort_by(KEYS))
    both = rows.timeseries(tags=2, days=2, per_day=3, value=7.0)  # day 1 changed, day 2 new
    assert delta_sink.merge(TIMESERIES, both) == WriteResult(inserted=6, updated=6)
    delta_sink.merge(WATERMARKS, rows.table(WATERMARKS, [rows.watermark("W001", rows.T0)]))

    assert read(spark, spark_sink.table_name(TIMESERIES)).equals(both.sort_by(KEYS))
    assert sorted(spark_sink.read(WATERMARKS).column("item_id").to_pylist()) == ["W000", "W001"]
    assert spark_sink.merge(TIMESERIES, both) == WriteResult(inserted=0, updated=0)


def test_spark_reads_and_writes_the_tables_delta_rs_created(spark, spark_location, tmp_path):
    delta_sink = DeltaSink(tmp_path, spark_location)
    day1 = rows.timeseries(tags=2, days=1, per_day=3)
    delta_sink.merge(TIMESERIES, day1)
    spark_sink = SparkSink(spark, spark_location)
    name = spark_sink.table_name(TIMESERIES)
    # registered in the catalog as a user registers an existing Delta table (an external table)
    spark.sql(f"CREATE TABLE {name} USING DELTA LOCATION '{delta_sink.path(TIMESERIES)}'")

    assert read(spark, name).equals(day1.sort_by(KEYS))
    both = rows.timeseries(tags=2, days=2, per_day=3, value=7.0)
    assert spark_sink.merge(TIMESERIES, both) == WriteResult(inserted=6, updated=6)
    with short_retention(spark):
        maintain(spark_sink, [TIMESERIES], retain_hours=0)

    assert delta_sink.read(TIMESERIES).sort_by(KEYS).equals(both.sort_by(KEYS))
    assert delta_sink.merge(TIMESERIES, both) == WriteResult(inserted=0, updated=0)


def test_delta_rs_cannot_write_liquid_clustered_tables(spark, spark_location, tmp_path):
    """Why the tables stay partitioned + Z-ordered (docs/lake.md): Databricks recommends liquid clustering for
    new tables, but delta-rs 1.6 refuses to write a clustered table. When this fails, revisit the layout."""
    path = tmp_path / "clustered"
    spark.sql(f"CREATE TABLE delta.`{path}` (tag_webid STRING, value DOUBLE) USING DELTA CLUSTER BY (tag_webid)")
    assert DeltaTable(str(path)).to_pyarrow_table().num_rows == 0  # reading works
    with pytest.raises(Exception, match=r"Unsupported table features required: \[.*ClusteredTable"):
        write_deltalake(str(path), pa.table({"tag_webid": ["W0"], "value": [1.0]}), mode="append")


def test_maintain_command_on_databricks_prints_deltas_own_figures(spark, spark_location, tmp_path, monkeypatch, capsys):
    sink = SparkSink(spark, spark_location)
    for seq in range(2):
        sink.merge(TIMESERIES, rows.timeseries(tags=1, days=1, per_day=2, seq=seq))
    config = tmp_path / "connector.yaml"
    config.write_text(
        'pi_web_api:\n  url: "https://pi.example.com/piwebapi"\nextraction:\n  tags: ["W000"]\n', encoding="utf-8"
    )
    monkeypatch.setenv("DATABRICKS_RUNTIME_VERSION", "17.3")  # default_sink: the active SparkSession

    schemas = ["--schema", spark_location.schema, "--checkpoint-schema", spark_location.checkpoint_schema]
    code = cli.main(["maintain", "--config", str(config), *schemas])

    printed, errors = capsys.readouterr()
    assert code == 0, errors
    assert f"{sink.table_name(TIMESERIES)}: compacted 2 -> 1 files + z-order, vacuumed 0 files" in printed
    assert printed.count("\n") == 1  # only the table that exists
