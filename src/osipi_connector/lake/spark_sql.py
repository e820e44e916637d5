"""The Delta SQL the Spark sink runs on Databricks, generated from a TableSpec + Location by pure functions.

The tests run every statement on local Spark with real Delta Lake (tests/lake/test_spark_sink.py).
Identifiers are back-quoted (catalog names may contain '-'); literals use Spark's backslash escaping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from osipi_connector.lake.merge_conditions import (
    SOURCE,
    TARGET,
    changed_condition,
    merge_condition,
    update_assignments,
)
from osipi_connector.lake.schemas import TableSpec
from osipi_connector.lake.sink import Location

TABLE_PROPERTIES = {
    # Databricks bins small writes into larger files and compacts after writes: hourly runs stay cheap to read.
    "delta.autoOptimize.optimizeWrite": "true",
    "delta.autoOptimize.autoCompact": "true",
}


def ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def string_literal(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def full_name(spec: TableSpec, location: Location) -> str:
    """`catalog`.`schema`.`table`, quoted for SQL."""
    return ".".join(ident(p) for p in (location.catalog, location.schema_for(spec), spec.name))


def scratch_table(location: Location, name: str) -> str:
    """`catalog`.`checkpoint schema`.`name`: where a run keeps a table of its own for a while."""
    return ".".join(ident(p) for p in (location.catalog, location.checkpoint_schema, name))


def create_schema_sql(spec: TableSpec, location: Location) -> str:
    return f"CREATE SCHEMA IF NOT EXISTS {ident(location.catalog)}.{ident(location.schema_for(spec))}"


def create_table_sql(spec: TableSpec, location: Location) -> str:
    from osipi_connector.lake.spark_schema import spark_schema

    columns = []
    for field in spark_schema(spec.schema):
        column = f"  {ident(field.name)} {field.dataType.simpleString().upper()}"
        if not field.nullable:
            column += " NOT NULL"
        if field.name in spec.column_comments:
            column += f" COMMENT {string_literal(spec.column_comments[field.name])}"
        columns.append(column)
    lines = [f"CREATE TABLE IF NOT EXISTS {full_name(spec, location)} (", ",\n".join(columns), ")", "USING DELTA"]
    if spec.partition_by:
        lines.append(f"PARTITIONED BY ({', '.join(ident(c) for c in spec.partition_by)})")
    if spec.comment:
        lines.append(f"COMMENT {string_literal(spec.comment)}")
    properties = ",\n".join(f"  {string_literal(k)} = {string_literal(v)}" for k, v in TABLE_PROPERTIES.items())
    lines += ["TBLPROPERTIES (", properties, ")"]
    return "\n".join(lines)


def merge_sql(
    spec: TableSpec,
    location: Location,
    source_view: str,
    partition_values: Mapping[str, Iterable[Any]] | None = None,
    key_ranges: Mapping[str, tuple[object, object]] | None = None,
) -> str:
    """MERGE by the spec's keys; `partition_values` (the batch's distinct partition values) and `key_ranges`
    (min/max of its keys, `merge_conditions.key_ranges`) are literal bounds that prune the target's files.

    The source is first cut to the rows that are new or changed: Delta rewrites every file holding a row the
    ON condition matches, even when `WHEN MATCHED AND <changed>` then updates nothing, so without the cut a
    re-run (or a backfill over landed hours) would rewrite all its partitions and conflict with concurrent
    writers for nothing."""
    on = merge_condition(spec, partition_values, q="`", key_ranges=key_ranges)
    when_changed = changed_condition(spec, q="`")
    unchanged = f" AND NOT ({when_changed})" if when_changed else ""
    assignments = update_assignments(spec, q="`")
    update = (
        "UPDATE SET *"
        if assignments is None
        else "UPDATE SET " + ", ".join(f"{ident(column)} = {expression}" for column, expression in assignments.items())
    )
    matched = f"WHEN MATCHED AND ({when_changed}) THEN {update}" if when_changed else f"WHEN MATCHED THEN {update}"
    target = full_name(spec, location)
    return "\n".join(
        [
            f"MERGE INTO {target} AS {TARGET}",
            f"USING (SELECT * FROM {ident(source_view)} AS {SOURCE}",
            f"  WHERE NOT EXISTS (SELECT 1 FROM {target} AS {TARGET} WHERE {on}{unchanged})) AS {SOURCE}",
            f"ON {on}",
            matched,
            "WHEN NOT MATCHED THEN INSERT *",
        ]
    )


def insert_sql(spec: TableSpec, location: Location, source_view: str) -> str:
    columns = ", ".join(ident(c) for c in spec.schema.names)
    return f"INSERT INTO {full_name(spec, location)} ({columns})\nSELECT {columns} FROM {ident(source_view)}"


def select_sql(spec: TableSpec, location: Location, columns: list[str] | None = None) -> str:
    names = ", ".join(ident(c) for c in (columns if columns is not None else spec.schema.names))
    return f"SELECT {names} FROM {full_name(spec, location)}"


def schema_probe_sql(spec: TableSpec, location: Location) -> str:
    """Reads no rows: its result schema is the existing table's (compared with the spec before writing)."""
    return f"SELECT * FROM {full_name(spec, location)} LIMIT 0"


def optimize_sql(spec: TableSpec, location: Location) -> str:
    statement = f"OPTIMIZE {full_name(spec, location)}"
    if spec.zorder_by:
        statement += f" ZORDER BY ({', '.join(ident(c) for c in spec.zorder_by)})"
    return statement


def history_sql(spec: TableSpec, location: Location, limit: int | None = None) -> str:
    return f"DESCRIBE HISTORY {full_name(spec, location)}" + (f" LIMIT {int(limit)}" if limit else "")


def vacuum_sql(spec: TableSpec, location: Location, retain_hours: int = 168) -> str:
    return f"VACUUM {full_name(spec, location)} RETAIN {int(retain_hours)} HOURS"
