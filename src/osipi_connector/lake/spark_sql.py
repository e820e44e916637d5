"""The Delta SQL the Spark sink runs on Databricks, generated from a TableSpec + Location by pure functions.

The tests run every statement on local Spark with real Delta Lake (tests/lake/test_spark_sink.py).
Identifiers are back-quoted (catalog names may contain '-'); literals use Spark's backslash escaping.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from osipi_connector.lake.merge_conditions import (
    SOURCE,
    TARGET,
    changed_condition,
    merge_condition,
    sql_literal,
    update_assignments,
)
from osipi_connector.lake.schemas import TableSpec
from osipi_connector.lake.sink import Location

TABLE_PROPERTIES = {
    # Bin small writes into larger files and compact after writes (open-source Delta too): hourly runs stay
    # cheap to read. Databricks does both for MERGE whatever these say.
    "delta.autoOptimize.optimizeWrite": "true",
    "delta.autoOptimize.autoCompact": "true",
    # Pinned off, whatever the workspace's "auto-enable deletion vectors" default: with them the table needs
    # reader feature deletionVectors, which delta-rs (the embedded engine, and other readers) cannot read.
    # The hourly layout already bounds what an update copies to the previous run's lookback file; a table
    # only Databricks reads may turn them on (ALTER TABLE ... SET TBLPROPERTIES), see docs/lake.md.
    "delta.enableDeletionVectors": "false",
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


def update_sql(
    spec: TableSpec,
    location: Location,
    source_view: str,
    partition_values: Mapping[str, Iterable[Any]] | None = None,
    key_ranges: Mapping[str, tuple[object, object]] | None = None,
) -> str | None:
    """The first of a write's MERGEs (see `insert_sql`'s): update the rows the target holds with other values;
    None when the spec compares no column (a matched row never changes).

    Its source is cut to exactly those rows (`EXISTS` a target row with the key and other values) and it has
    no INSERT clause: Delta rewrites every file holding a row the ON condition matches — even when
    `WHEN MATCHED AND <changed>` then updates nothing — and writes the inserted rows into the same new files.
    So a combined MERGE fuses new rows with the rewritten file, and after a few hourly runs the day is one
    file that every lookback edit rewrites whole (docs/benchmarks.md, pi_hourly). Cut like this, it rewrites
    the files holding edited keys only. `partition_values` (the batch's partition values) and `key_ranges`
    (min/max of its keys, `merge_conditions.key_ranges`) are literal bounds that prune the target's files."""
    when_changed = changed_condition(spec, q="`")
    if when_changed is None:
        return None
    on = merge_condition(spec, partition_values, q="`", key_ranges=key_ranges)
    assignments = update_assignments(spec, q="`")
    update = (
        "UPDATE SET *"
        if assignments is None
        else "UPDATE SET " + ", ".join(f"{ident(column)} = {expression}" for column, expression in assignments.items())
    )
    target = full_name(spec, location)
    return "\n".join(
        [
            f"MERGE INTO {target} AS {TARGET}",
            f"USING (SELECT * FROM {ident(source_view)} AS {SOURCE}",
            f"  WHERE EXISTS (SELECT 1 FROM {target} AS {TARGET} WHERE {on} AND ({when_changed}))) AS {SOURCE}",
            f"ON {on}",
            f"WHEN MATCHED AND ({when_changed}) THEN {update}",
        ]
    )


def insert_new_sql(
    spec: TableSpec,
    location: Location,
    source_view: str,
    partition_values: Mapping[str, Iterable[Any]] | None = None,
    key_ranges: Mapping[str, tuple[object, object]] | None = None,
    time_range: tuple[datetime | None, datetime | None] = (None, None),
) -> str:
    """The second MERGE: insert the source rows whose key the target lacks, nothing else.

    Delta runs an insert-only MERGE as an anti join plus an append: it writes new files and rewrites none. It
    still reads the target, so two writers inserting the same keys at once conflict and the loser re-runs
    (lake/conflict_retry.py) and finds them: exactly once, unlike a blind INSERT. `time_range` [from, to)
    keeps only source rows whose `spec.time_column` lies in it, so that rows the next run re-reads land in
    files of their own (`Sink.merge`'s `reread_from`)."""
    on = merge_condition(spec, partition_values, q="`", key_ranges=key_ranges)
    wanted = []
    if spec.time_column is not None:
        column = f"{SOURCE}.{ident(spec.time_column)}"
        low, high = (None if t is None else sql_literal(t) for t in time_range)
        if (low is None) != (time_range[0] is None) or (high is None) != (time_range[1] is None):
            raise ValueError(f"no SQL literal for the time range {time_range} (times must be time-zone aware)")
        wanted = ([f"{column} >= {low}"] if low else []) + ([f"{column} < {high}"] if high else [])
    where = f" WHERE {' AND '.join(wanted)}" if wanted else ""
    return "\n".join(
        [
            f"MERGE INTO {full_name(spec, location)} AS {TARGET}",
            f"USING (SELECT * FROM {ident(source_view)} AS {SOURCE}{where}) AS {SOURCE}",
            f"ON {on}",
            "WHEN NOT MATCHED THEN INSERT *",
        ]
    )


def merge_sql(
    spec: TableSpec,
    location: Location,
    source_view: str,
    partition_values: Mapping[str, Iterable[Any]] | None = None,
    key_ranges: Mapping[str, tuple[object, object]] | None = None,
    reread_from: datetime | None = None,
) -> list[str]:
    """An upsert by the spec's keys as the statements to run in order: `update_sql`, then `insert_new_sql`
    once, or twice when `reread_from` is given (rows before it, then rows at or after it: the next run's
    lookback, whose files the next run's update rewrites). Each statement is idempotent; a run that dies
    between them is repaired by the next, whose source finds the landed rows unchanged."""
    statements = []
    update = update_sql(spec, location, source_view, partition_values, key_ranges)
    if update is not None:
        statements.append(update)
    parts: list[tuple[datetime | None, datetime | None]] = [(None, None)]
    if reread_from is not None and spec.time_column is not None:
        parts = [(None, reread_from), (reread_from, None)]
    statements += [insert_new_sql(spec, location, source_view, partition_values, key_ranges, p) for p in parts]
    return statements


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
