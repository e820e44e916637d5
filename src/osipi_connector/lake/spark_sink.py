"""The Databricks sink: Unity Catalog Delta tables written through Spark SQL generated in `lake/spark_sql.py`.

Every Delta statement comes from a pure function; this class builds the source DataFrame from Arrow (with the
spec's Spark schema), registers it as a temporary view for the statement and drops it afterwards. Works on
classic clusters, serverless and Databricks Connect; the jobs run DBR 17.3 LTS (Spark 4.0), and older Spark
3.5 clients take `lake/spark_arrow.py`'s pandas path. Tested on local Spark with real Delta Lake
(tests/lake/test_spark_sink.py). Concurrent MERGEs into one table are Delta's business (optimistic
concurrency with conflict detection); schedule jobs with max_concurrent_runs: 1 anyway.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

import pyarrow as pa

from osipi_connector.lake import spark_sql
from osipi_connector.lake.merge_conditions import key_ranges, latest_sql
from osipi_connector.lake.schemas import TableSpec
from osipi_connector.lake.sink import Location, Optimized, Sink, Vacuumed, WriteResult
from osipi_connector.lake.spark_arrow import to_arrow, to_dataframe
from osipi_connector.lake.spark_schema import spark_schema
from osipi_connector.lake.validate import (
    SchemaMismatchError,
    column_differences,
    conform,
    conform_to,
    merge_source,
    read_schema,
)
from osipi_connector.spark.py4j_logging import cap_py4j_logging

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from osipi_connector.config import ConnectorConfig
    from osipi_connector.executor import UnitExecutor


class SparkSink:
    """Sink on Unity Catalog tables `catalog.schema.table` through a SparkSession (or Databricks Connect)."""

    engine = "spark"

    def __init__(self, spark: SparkSession, location: Location | None = None, arrow_native: bool | None = None) -> None:
        """`arrow_native`: None detects it from spark.version (Spark 4+); False forces the Spark 3.5 path.

        Every Spark entry point (the CLI and the bundle's wheel tasks through `runner.default_sink`, notebooks,
        the benchmarks) makes one, so it is where py4j's DEBUG logger is capped (spark/py4j_logging.py)."""
        cap_py4j_logging()
        self.spark = spark
        self.location = location or Location()
        self.arrow_native = arrow_native
        self._ensured: set[str] = set()

    def table_name(self, spec: TableSpec) -> str:
        return f"{self.location.catalog}.{self.location.schema_for(spec)}.{spec.name}"

    def ensure(self, spec: TableSpec) -> None:
        """CREATE SCHEMA/TABLE IF NOT EXISTS, then check an existing table's columns; once per table per sink."""
        if spec.name in self._ensured:
            return
        self.spark.sql(spark_sql.create_schema_sql(spec, self.location))
        self.spark.sql(spark_sql.create_table_sql(spec, self.location))
        existing = self.spark.sql(spark_sql.schema_probe_sql(spec, self.location)).schema
        problems = column_differences(
            {f.name: f.dataType.simpleString() for f in spark_schema(spec.schema)},
            {f.name: f.dataType.simpleString() for f in existing},
            "in Unity Catalog",
        )
        if problems:
            raise SchemaMismatchError(
                f"table {self.table_name(spec)} does not match its spec: {'; '.join(problems)}. "
                "Run `osipi-connector upgrade-tables --config ...` (checkpoint tables), or ALTER the table (or "
                "point unity_catalog.schema elsewhere), before running this version."
            )
        self._ensured.add(spec.name)

    def dataframe(self, spec: TableSpec, data: pa.Table) -> DataFrame:
        """A DataFrame with exactly the spec's Spark schema (checked against the spec first)."""
        return to_dataframe(self.spark, conform(spec, data), spark_schema(spec.schema), self.arrow_native)

    def merge(self, spec: TableSpec, data: pa.Table, reread_from: datetime | None = None) -> WriteResult:
        """Upsert as `spark_sql.merge_sql`'s statements (update the changed rows, then insert the new ones,
        those at or after `reread_from` in files of their own), their ON clauses bounded by the batch's
        partitions and key ranges (file pruning)."""
        source, partitions = merge_source(spec, data)
        if source.num_rows == 0:
            return WriteResult(inserted=0, updated=0)
        return self._merge_view(spec, self.dataframe(spec, source), partitions, key_ranges(spec, source), reread_from)

    def merge_dataframe(
        self,
        spec: TableSpec,
        df: DataFrame,
        partition_values: Mapping[str, Iterable[Any]] | None = None,
        reread_from: datetime | None = None,
    ) -> WriteResult:
        """Upsert from a DataFrame computed on the executors (the distributed timeseries), same SQL as `merge`.

        Nothing but its key ranges (one aggregate row) is collected to the driver, so the caller guarantees
        unique keys (the planned units never overlap) and passes the partition values the rows can have, which
        prune the target; None scans it. Pass a DataFrame that is cheap to read twice (a staged table): it is
        read by the key-range query and by each statement."""
        problems = column_differences(
            {f.name: f.dataType.simpleString() for f in spark_schema(spec.schema)},
            {f.name: f.dataType.simpleString() for f in df.schema},
            "in the DataFrame",
        )
        if problems:
            raise SchemaMismatchError(
                f"DataFrame for {self.table_name(spec)} does not match its spec: {'; '.join(problems)}"
            )
        df = df.select(*spec.schema.names)
        return self._merge_view(spec, df, partition_values, self._key_ranges(spec, df), reread_from)

    def _key_ranges(self, spec: TableSpec, df: DataFrame) -> dict[str, tuple[object, object]]:
        """`merge_conditions.key_ranges` of a DataFrame: min and max of each key in one aggregate query, as a
        two-row Arrow table (collected through `to_arrow`, so timestamps stay UTC instants)."""
        from pyspark.sql import functions as F

        keys = spec.keys
        bounds = df.agg(*[F.min(k).alias(f"min_{k}") for k in keys], *[F.max(k).alias(f"max_{k}") for k in keys])
        schema = pa.schema([spec.schema.field(k).with_name(f"{end}_{k}") for end in ("min", "max") for k in keys])
        row = to_arrow(bounds, schema.with_metadata({}), self.arrow_native)
        both = pa.table(
            {k: pa.concat_arrays([row[f"min_{k}"].combine_chunks(), row[f"max_{k}"].combine_chunks()]) for k in keys}
        )
        return key_ranges(spec, both)

    def _merge_view(
        self,
        spec: TableSpec,
        df: DataFrame,
        partition_values: Mapping[str, Iterable[Any]] | None,
        ranges: Mapping[str, tuple[object, object]] | None = None,
        reread_from: datetime | None = None,
    ) -> WriteResult:
        self.ensure(spec)
        inserted = updated = 0
        with _TempView(self.spark, _view_name(spec), df) as view:
            for statement in spark_sql.merge_sql(spec, self.location, view, partition_values, ranges, reread_from):
                rows = self.spark.sql(statement).collect()
                metrics = rows[0].asDict() if rows else {}
                inserted += int(metrics.get("num_inserted_rows", 0))
                updated += int(metrics.get("num_updated_rows", 0))
        return WriteResult(inserted=inserted, updated=updated)

    def append(self, spec: TableSpec, data: pa.Table) -> None:
        source = conform(spec, data)
        if source.num_rows == 0:
            return
        self.ensure(spec)
        with self._view(spec, source) as view:
            self.spark.sql(spark_sql.insert_sql(spec, self.location, view)).collect()

    def read(self, spec: TableSpec, columns: list[str] | None = None) -> pa.Table:
        """Small tables only (watermarks, run metrics): the rows travel to the driver. Creates a missing table."""
        schema = read_schema(spec, columns)
        self.ensure(spec)
        table = to_arrow(self.spark.sql(spark_sql.select_sql(spec, self.location, columns)), schema, self.arrow_native)
        return conform_to(schema, table, f"table {self.table_name(spec)}")

    def latest(self, spec: TableSpec, column: str, by: str) -> dict[str, datetime]:
        if not self.exists(spec):
            return {}
        query = latest_sql(spark_sql.full_name(spec, self.location), column, by, "`")
        schema = pa.schema([("item", spec.schema.field(by).type), ("latest", spec.schema.field(column).type)])
        found = to_arrow(self.spark.sql(query), schema, self.arrow_native)  # aware UTC times, as delta-rs gives
        return dict(zip(found["item"].to_pylist(), found["latest"].to_pylist(), strict=True))

    def exists(self, spec: TableSpec) -> bool:
        return bool(self.spark.catalog.tableExists(self.table_name(spec)))

    def optimize(self, spec: TableSpec) -> Optimized:
        """OPTIMIZE (ZORDER BY the spec's columns): Delta's own metrics row says how many files it rewrote."""
        self.ensure(spec)
        rows = self.spark.sql(spark_sql.optimize_sql(spec, self.location)).collect()
        metrics = rows[0]["metrics"]
        return Optimized(int(metrics["numFilesRemoved"]), int(metrics["numFilesAdded"]), tuple(spec.zorder_by))

    def vacuum(self, spec: TableSpec, retain_hours: int = 168) -> Vacuumed:
        """VACUUM, counting the deleted files from the table history's VACUUM END entry (Delta logs it; the
        statement itself answers only the path). Databricks refuses less than 168 h unless
        spark.databricks.delta.retentionDurationCheck.enabled is false."""
        self.ensure(spec)
        before = self._version(spec)
        self.spark.sql(spark_sql.vacuum_sql(spec, self.location, retain_hours)).collect()
        ended = (
            self.spark.sql(spark_sql.history_sql(spec, self.location))
            .where(f"version > {before} AND operation = 'VACUUM END'")
            .select("operationMetrics")
            .collect()
        )
        if not ended:
            raise RuntimeError(
                f"VACUUM of {self.table_name(spec)} left no VACUUM END entry in the table history; "
                "set spark.databricks.delta.vacuum.logging.enabled to true so maintenance can report it"
            )
        return Vacuumed(int(ended[0]["operationMetrics"]["numDeletedFiles"]), retain_hours)

    def _version(self, spec: TableSpec) -> int:
        return int(self.spark.sql(spark_sql.history_sql(spec, self.location, limit=1)).collect()[0]["version"])

    def executor(self, config: ConnectorConfig, writer: Sink | None = None) -> UnitExecutor:
        """Spark's executors fetch the units and `writer` (default: this sink) MERGEs their rows as a DataFrame
        (`merge_dataframe`), unless `performance.distributed` says otherwise (spark/dispatch.py)."""
        from osipi_connector.spark import dispatch

        # a writer other than this sink wraps it (ConflictRetry), so it has the Spark attributes too
        return dispatch.executor(self if writer is None else cast("dispatch.SparkWriter", writer), config)

    def _view(self, spec: TableSpec, source: pa.Table) -> _TempView:
        return _TempView(self.spark, _view_name(spec), self.dataframe(spec, source))


def _view_name(spec: TableSpec) -> str:
    return f"osipi_src_{spec.name}_{uuid.uuid4().hex[:12]}"


class _TempView:
    """A uniquely named temp view over the source DataFrame, dropped even when the statement fails."""

    def __init__(self, spark: Any, name: str, df: DataFrame) -> None:
        self.spark, self.name, self.df = spark, name, df

    def __enter__(self) -> str:
        self.df.createOrReplaceTempView(self.name)
        return self.name

    def __exit__(self, *exc: object) -> None:
        self.spark.catalog.dropTempView(self.name)
