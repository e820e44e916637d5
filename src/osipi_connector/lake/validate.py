"""Incoming Arrow data checked against a TableSpec before any sink touches a table.

Both sinks call these first, so a bad batch fails with a message naming the column or key instead of a
half-written table or an engine error deep inside DataFusion or Spark.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from osipi_connector.lake.schemas import TableSpec
from osipi_connector.lake.unique_keys import provably_unique


class SchemaMismatchError(ValueError):
    """The data does not fit the table's schema; the message names the table and column."""


class DuplicateKeyError(ValueError):
    """The same key appears twice in one batch: a MERGE would be ambiguous."""


def conform(spec: TableSpec, data: pa.Table | pa.RecordBatch) -> pa.Table:
    """Return `data` with exactly `spec.schema` (column order, types, nullability) or raise SchemaMismatchError.

    Safe casts only (string_view -> string, int32 -> int64, ns -> us when no precision is lost...): a value
    that would change is an error, never a silent truncation. Timezone-naive timestamps are rejected because
    the tables store UTC and a naive value's zone is a guess.
    """
    return conform_to(spec.schema, data, f"table {spec.name}")


def conform_to(schema: pa.Schema, data: pa.Table | pa.RecordBatch, where: str) -> pa.Table:
    """`conform` for any schema (e.g. a subset of a table's columns); `where` starts every error message."""
    table = pa.table(data) if isinstance(data, pa.RecordBatch) else data
    expected = schema.names
    missing = [name for name in expected if name not in table.column_names]
    extra = [name for name in table.column_names if name not in expected]
    if missing or extra:
        raise SchemaMismatchError(
            f"{where}: columns do not match the schema in osipi_connector.lake.schemas"
            + (f"; missing {missing}" if missing else "")
            + (f"; unexpected {extra}" if extra else "")
        )
    if len(set(table.column_names)) != len(table.column_names):
        raise SchemaMismatchError(f"{where}: duplicate column names in {table.column_names}")
    columns = []
    for target in schema:
        column = table.column(target.name)
        if pa.types.is_timestamp(target.type) and pa.types.is_timestamp(column.type) and column.type.tz is None:
            raise SchemaMismatchError(
                f"{where}: column {target.name!r} holds timezone-naive timestamps; give them tz=UTC"
            )
        if column.type != target.type:
            try:
                column = column.cast(target.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaMismatchError(
                    f"{where}: column {target.name!r} has type {column.type}, expected {target.type} ({exc})"
                ) from None
        if not target.nullable and column.null_count:
            raise SchemaMismatchError(
                f"{where}: column {target.name!r} is NOT NULL but has {column.null_count} null value(s)"
            )
        columns.append(column)
    return pa.Table.from_arrays(columns, schema=schema)


def check_unique_keys(spec: TableSpec, data: pa.Table) -> None:
    """Raise DuplicateKeyError naming up to three repeated keys (the caller must de-duplicate before MERGE)."""
    keys = list(spec.keys)
    if provably_unique(data, keys):  # fast numpy proof; the group-by below finds the examples otherwise
        return
    counts = data.select(keys).group_by(keys).aggregate([([], "count_all")])
    if counts.num_rows == data.num_rows:
        return
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    examples = repeated.slice(0, 3).select(keys).to_pylist()
    raise DuplicateKeyError(
        f"table {spec.name}: {repeated.num_rows} key(s) {tuple(keys)} appear more than once in one batch, "
        f"e.g. {examples}; de-duplicate the batch (keep one row per key) before merging"
    )


def merge_source(spec: TableSpec, data: pa.Table | pa.RecordBatch) -> tuple[pa.Table, dict[str, list]]:
    """What every sink's MERGE starts with: the conformed, key-unique batch and its distinct partition values."""
    source = conform(spec, data)
    check_unique_keys(spec, source)
    return source, {c: pc.unique(source[c]).to_pylist() for c in spec.partition_by}


def read_schema(spec: TableSpec, columns: list[str] | None) -> pa.Schema:
    """The schema a `read(spec, columns)` returns; unknown column names are a SchemaMismatchError."""
    if columns is None:
        return spec.schema
    unknown = [c for c in columns if c not in spec.schema.names]
    if unknown:
        raise SchemaMismatchError(f"table {spec.name}: no column(s) {unknown}; columns are {spec.schema.names}")
    return pa.schema([spec.schema.field(c) for c in columns])


def column_differences(expected: dict[str, object], actual: dict[str, object], where: str) -> list[str]:
    """Column-by-column differences between a spec's types and an existing table's (compared with ==)."""
    problems = [
        f"{name} ({'missing' if name not in actual else f'{actual[name]} {where}, {dtype} in spec'})"
        for name, dtype in expected.items()
        if actual.get(name) != dtype
    ]
    return problems + [f"{name} ({where}, not in spec)" for name in actual if name not in expected]
