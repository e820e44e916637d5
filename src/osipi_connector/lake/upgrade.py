"""Bring checkpoint tables an earlier version created to this version's layout (`osipi-connector upgrade-tables`).

Changes so far: `pi_watermarks` partitioned by `dataset` (the parallel hourly tasks then write disjoint files;
docs/deployment.md, "Jobs that run at the same time"), `pi_run_metrics.conflict_retries`, and
`pi_run_metrics.datasets` / `watermarks_repaired` (runs that died, watermarks past the server's clock). Each step runs only when needed, so the command is safe to repeat; run it
while no job writes (it rewrites the small watermark table in one commit).
"""

from __future__ import annotations

from typing import Any

from osipi_connector.lake.schemas import RUN_METRICS, WATERMARKS, TableSpec

UPGRADED = (WATERMARKS, RUN_METRICS)


def upgrade(sink: Any) -> list[str]:
    """Upgrade the tables of `sink` (a DeltaSink or SparkSink); returns one line per change made."""
    if sink.engine == "spark":
        return _upgrade_spark(sink)
    return _upgrade_delta_rs(sink)


def _missing_columns(spec: TableSpec, names: list[str]) -> list:
    return [f for f in spec.schema if f.name not in names]


def _upgrade_delta_rs(sink: Any) -> list[str]:
    from deltalake import DeltaTable, Field, write_deltalake

    done = []
    for spec in UPGRADED:
        path = sink.path(spec)
        if not DeltaTable.is_deltatable(str(path)):
            continue
        table = DeltaTable(path)
        missing = _missing_columns(spec, table.schema().to_arrow().names)
        if missing:
            table.alter.add_columns([Field.from_arrow(f) for f in missing])
            done.append(f"{path}: added {', '.join(f.name for f in missing)}")
            table = DeltaTable(path)
        if list(table.metadata().partition_columns) != list(spec.partition_by):
            rows = table.to_pyarrow_table().select(spec.schema.names).cast(spec.schema)
            write_deltalake(
                table, rows, mode="overwrite", partition_by=list(spec.partition_by) or None, schema_mode="overwrite"
            )
            done.append(f"{path}: partitioned by {', '.join(spec.partition_by) or 'nothing'}")
    return done


def _upgrade_spark(sink: Any) -> list[str]:
    from osipi_connector.lake.spark_schema import spark_schema
    from osipi_connector.lake.spark_sql import TABLE_PROPERTIES, full_name, ident, string_literal

    spark, done = sink.spark, []
    for spec in UPGRADED:
        name = full_name(spec, sink.location)
        if not spark.catalog.tableExists(sink.table_name(spec)):
            continue
        present = spark.table(sink.table_name(spec)).columns
        missing = [f for f in spark_schema(spec.schema) if f.name not in present]
        if missing:
            columns = ", ".join(f"{ident(f.name)} {f.dataType.simpleString().upper()}" for f in missing)
            spark.sql(f"ALTER TABLE {name} ADD COLUMNS ({columns})")
            done.append(f"{sink.table_name(spec)}: added {', '.join(f.name for f in missing)}")
        partitions = spark.sql(f"DESCRIBE DETAIL {name}").first()["partitionColumns"]
        if list(partitions) != list(spec.partition_by):
            by = f" PARTITIONED BY ({', '.join(ident(c) for c in spec.partition_by)})" if spec.partition_by else ""
            properties = ", ".join(f"{string_literal(k)} = {string_literal(v)}" for k, v in TABLE_PROPERTIES.items())
            spark.sql(
                f"CREATE OR REPLACE TABLE {name} USING DELTA{by} COMMENT {string_literal(spec.comment)} "
                f"TBLPROPERTIES ({properties}) AS SELECT * FROM {name}"
            )
            done.append(f"{sink.table_name(spec)}: partitioned by {', '.join(spec.partition_by) or 'nothing'}")
    return done
