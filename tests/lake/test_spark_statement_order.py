"""STATEMENT-ORDER TESTS, NOT DELTA TESTS.

Local Spark has no Delta (no Maven here), so the Delta statements cannot execute here. SparkSink runs against the real local
session wrapped in `RecordingSpark`, which records the text of every `spark.sql` call and answers it with what
Databricks would return in shape (MERGE metrics row, empty result) without executing it. What these tests
prove: which statements SparkSink issues, in which order, with which text, and that the source temp view
exists with exactly the batch's rows while the statement runs and is gone afterwards. Everything else
(createDataFrame, temp views, toArrow) runs for real.
"""

from __future__ import annotations

import datetime as dt
import re

import pyarrow as pa
import pytest

from osipi_connector.lake import spark_sql
from osipi_connector.lake.maintenance import maintain
from osipi_connector.lake.merge_conditions import key_ranges
from osipi_connector.lake.schemas import BY_NAME, RUN_METRICS, TIMESERIES, WATERMARKS
from osipi_connector.lake.sink import Location, WriteResult
from osipi_connector.lake.spark_sink import SparkSink
from osipi_connector.lake.validate import DuplicateKeyError, SchemaMismatchError, conform
from tests.lake import rows

LOCATION = Location(catalog="main", schema="bronze", checkpoint_schema="checkpoints")
MERGE_RESULT = "num_affected_rows BIGINT, num_updated_rows BIGINT, num_deleted_rows BIGINT, num_inserted_rows BIGINT"


class RecordingSpark:
    """Records `sql()` text; delegates everything else to the real local SparkSession."""

    def __init__(self, spark, tables: dict[str, pa.Table] | None = None, fail_on: str | None = None) -> None:
        self._spark = spark
        self.tables = tables or {}  # what a SELECT on a three-part name answers
        self.fail_on = fail_on
        self.statements: list[str] = []
        self.sources: dict[str, pa.Table] = {}  # the temp view's rows at the moment the statement ran

    def __getattr__(self, name):
        return getattr(self._spark, name)

    def sql(self, text: str):
        self.statements.append(text)
        if self.fail_on and text.startswith(self.fail_on):
            raise RuntimeError(f"simulated failure of {self.fail_on}")
        view = re.search(r"(?:USING|FROM) `(osipi_src_\w+)`", text)
        if view:
            self.sources[view.group(1)] = self._spark.table(view.group(1)).toArrow()
        if text.startswith("MERGE"):
            n = self.sources[view.group(1)].num_rows
            return self._spark.createDataFrame([(n, 1, 0, n - 1)], MERGE_RESULT)
        selected = re.match(r"SELECT (.*) FROM (`\w+`\.`\w+`\.`\w+`)( LIMIT 0)?$", text)
        if selected:
            name = selected.group(2).replace("`", "")
            table = self.tables.get(name, BY_NAME[name.rsplit(".", 1)[1]].schema.empty_table())
            if selected.group(3):  # the schema probe after CREATE TABLE IF NOT EXISTS
                return self._spark.createDataFrame(table.slice(0, 0))
            return self._spark.createDataFrame(table.select(re.findall(r"`(\w+)`", selected.group(1))))
        return self._spark.createDataFrame([], "ok INT")


def view_of(statement: str) -> str:
    return re.search(r"`(osipi_src_\w+)`", statement).group(1)


def test_merge_issues_create_schema_create_table_then_merge_over_a_temp_view(spark):
    recorder = RecordingSpark(spark)
    sink = SparkSink(recorder, LOCATION)
    batch = rows.timeseries(tags=2, days=2, per_day=3)

    result = sink.merge(TIMESERIES, batch)

    view = view_of(recorder.statements[3])
    assert recorder.statements == [
        "CREATE SCHEMA IF NOT EXISTS `main`.`bronze`",
        spark_sql.create_table_sql(TIMESERIES, LOCATION),
        "SELECT * FROM `main`.`bronze`.`pi_timeseries` LIMIT 0",
        spark_sql.merge_sql(
            TIMESERIES,
            LOCATION,
            view,
            {"partition_date": [dt.date(2025, 3, 1), dt.date(2025, 3, 2)]},
            key_ranges(TIMESERIES, batch),  # literal key bounds: Delta skips the files outside them
        ),
    ]
    assert result == WriteResult(inserted=11, updated=1)  # parsed from the MERGE result row
    source = conform(TIMESERIES, recorder.sources[view]).sort_by([(k, "ascending") for k in TIMESERIES.keys])
    assert source.equals(batch.sort_by([(k, "ascending") for k in TIMESERIES.keys]))
    assert not spark.catalog.tableExists(view)  # the temp view is dropped


def test_second_write_does_not_repeat_the_ddl(spark):
    recorder = RecordingSpark(spark)
    sink = SparkSink(recorder, LOCATION)
    sink.merge(WATERMARKS, rows.table(WATERMARKS, [rows.watermark("W000", rows.T0)]))
    sink.merge(WATERMARKS, rows.table(WATERMARKS, [rows.watermark("W001", rows.T0)]))
    assert [s.split(" ")[0] for s in recorder.statements] == ["CREATE", "CREATE", "SELECT", "MERGE", "MERGE"]
    assert recorder.statements[4].startswith("MERGE INTO `main`.`checkpoints`.`pi_watermarks` AS t\n")


def test_append_inserts_from_the_view(spark):
    recorder = RecordingSpark(spark)
    SparkSink(recorder, LOCATION).append(RUN_METRICS, rows.run_metrics("r1"))
    view = view_of(recorder.statements[-1])
    assert recorder.statements[-1] == spark_sql.insert_sql(RUN_METRICS, LOCATION, view)
    assert recorder.sources[view].to_pylist() == rows.run_metrics("r1").to_pylist()


def test_failed_statement_still_drops_the_view(spark):
    recorder = RecordingSpark(spark, fail_on="MERGE")
    with pytest.raises(RuntimeError, match="simulated failure"):
        SparkSink(recorder, LOCATION).merge(TIMESERIES, rows.timeseries(tags=1, days=1, per_day=1))
    assert not spark.catalog.tableExists(view_of(recorder.statements[-1]))


def test_bad_batches_issue_no_statement(spark):
    recorder = RecordingSpark(spark)
    sink = SparkSink(recorder, LOCATION)
    batch = rows.timeseries(tags=1, days=1, per_day=2)
    with pytest.raises(DuplicateKeyError):
        sink.merge(TIMESERIES, pa.concat_tables([batch, batch]))
    assert sink.merge(TIMESERIES, batch.slice(0, 0)) == WriteResult(inserted=0, updated=0)
    assert recorder.statements == []


def test_read_selects_and_returns_the_spec_schema(spark):
    stored = rows.table(WATERMARKS, [rows.watermark("W000", rows.T0 + dt.timedelta(hours=1))])
    recorder = RecordingSpark(spark, tables={"main.checkpoints.pi_watermarks": stored})
    sink = SparkSink(recorder, LOCATION)

    table = sink.read(WATERMARKS)
    subset = sink.read(WATERMARKS, columns=["item_id", "high_watermark"])

    assert recorder.statements[-2:] == [
        spark_sql.select_sql(WATERMARKS, LOCATION),
        "SELECT `item_id`, `high_watermark` FROM `main`.`checkpoints`.`pi_watermarks`",
    ]
    assert table.equals(stored)
    assert subset.to_pylist() == [{"item_id": "W000", "high_watermark": rows.T0 + dt.timedelta(hours=1)}]


def test_maintenance_issues_optimize_then_vacuum_per_table(spark):
    recorder = RecordingSpark(spark)
    results = maintain(SparkSink(recorder, LOCATION), [TIMESERIES, WATERMARKS])
    maintenance = [s for s in recorder.statements if not s.startswith(("CREATE", "SELECT"))]
    assert maintenance == [
        "OPTIMIZE `main`.`bronze`.`pi_timeseries` ZORDER BY (`tag_webid`, `timestamp`)",
        "VACUUM `main`.`bronze`.`pi_timeseries` RETAIN 168 HOURS",
        "OPTIMIZE `main`.`checkpoints`.`pi_watermarks`",
        "VACUUM `main`.`checkpoints`.`pi_watermarks` RETAIN 168 HOURS",
    ]
    assert [r.table for r in results] == ["main.bronze.pi_timeseries", "main.checkpoints.pi_watermarks"]
    assert all(r.error is None for r in results)


def test_existing_table_with_other_columns_is_refused_before_writing(spark):
    old = pa.table({"dataset": ["timeseries"], "item_id": ["W000"], "high_watermark": ["yesterday"]})
    recorder = RecordingSpark(spark, tables={"main.checkpoints.pi_watermarks": old})
    with pytest.raises(
        SchemaMismatchError,
        match=r"main\.checkpoints\.pi_watermarks does not match its spec: item_name \(missing\); .*"
        r"high_watermark \(string in Unity Catalog, timestamp in spec\)",
    ):
        SparkSink(recorder, LOCATION).merge(WATERMARKS, rows.table(WATERMARKS, [rows.watermark("W000", rows.T0)]))
    assert not any(s.startswith("MERGE") for s in recorder.statements)


def test_merge_dataframe_issues_the_same_statements_with_the_dataframe_as_source(spark):
    recorder = RecordingSpark(spark)
    sink = SparkSink(recorder, LOCATION)
    batch = rows.timeseries(tags=2, days=2, per_day=3)
    df = sink.dataframe(TIMESERIES, batch)
    df = df.select(*reversed(df.columns))  # column order is the sink's business, not the caller's
    dates = {"partition_date": [dt.date(2025, 3, 1), dt.date(2025, 3, 2)]}

    result = sink.merge_dataframe(TIMESERIES, df, dates)
    sink.merge_dataframe(TIMESERIES, df)

    first, second = view_of(recorder.statements[3]), view_of(recorder.statements[4])
    assert recorder.statements == [
        "CREATE SCHEMA IF NOT EXISTS `main`.`bronze`",
        spark_sql.create_table_sql(TIMESERIES, LOCATION),
        "SELECT * FROM `main`.`bronze`.`pi_timeseries` LIMIT 0",
        spark_sql.merge_sql(TIMESERIES, LOCATION, first, dates),
        spark_sql.merge_sql(TIMESERIES, LOCATION, second),  # no partition values: no pruning
    ]
    assert result == WriteResult(inserted=11, updated=1)
    assert recorder.sources[first].column_names == TIMESERIES.schema.names
    keys = [(k, "ascending") for k in TIMESERIES.keys]
    assert conform(TIMESERIES, recorder.sources[first]).sort_by(keys).equals(batch.sort_by(keys))
    assert not spark.catalog.tableExists(first)
    assert not spark.catalog.tableExists(second)


def test_merge_dataframe_refuses_a_dataframe_unlike_the_spec(spark):
    recorder = RecordingSpark(spark)
    sink = SparkSink(recorder, LOCATION)
    df = sink.dataframe(TIMESERIES, rows.timeseries(tags=1, days=1, per_day=1))
    wrong = df.drop("units").withColumn("value_seq", df["value_seq"].cast("string"))
    with pytest.raises(
        SchemaMismatchError, match=r"value_seq \(string in the DataFrame, int in spec\); units \(missing\)"
    ):
        sink.merge_dataframe(TIMESERIES, wrong)
    assert recorder.statements == []
