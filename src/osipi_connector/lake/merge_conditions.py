"""The MERGE conditions both sinks use, written once as SQL text.

delta-rs (DataFusion) and Spark SQL accept the same expression grammar for these conditions; only
identifier quoting differs, so callers pass their quote character.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from osipi_connector.lake.schemas import TableSpec

LINEAGE_COLUMNS = ("ingested_at", "run_id")
"""Bookkeeping columns: a re-read row that differs only here is left as it is (first ingestion wins)."""

TARGET = "t"
SOURCE = "s"


def quote(name: str, q: str) -> str:
    return f"{q}{name.replace(q, q + q)}{q}"


def sql_literal(value: object) -> str | None:
    """A SQL literal both engines read identically, or None when there is no safe spelling (then no pruning)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        return None
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str) and not any(c in value for c in "'\\\n"):
        return f"'{value}'"
    return None


def partition_filter(spec: TableSpec, partition_values: dict[str, Iterable[object]], q: str) -> list[str]:
    """`t.<part> IN (<literals>)` per partition column: lets the engine skip partitions the batch does not touch."""
    clauses = []
    for column in spec.partition_by:
        literals = [sql_literal(v) for v in sorted(set(partition_values.get(column, ())))]
        if not literals or None in literals:
            continue
        clauses.append(f"{TARGET}.{quote(column, q)} IN ({', '.join(literals)})")
    return clauses


def merge_condition(spec: TableSpec, partition_values: dict[str, Iterable[object]] | None = None, q: str = '"') -> str:
    """ON clause: partition pruning first (literal IN lists, then column equality), then the spec's keys."""
    clauses = partition_filter(spec, partition_values or {}, q)
    clauses += [f"{TARGET}.{quote(c, q)} = {SOURCE}.{quote(c, q)}" for c in spec.partition_by if c not in spec.keys]
    clauses += [f"{TARGET}.{quote(c, q)} = {SOURCE}.{quote(c, q)}" for c in spec.keys]
    return " AND ".join(clauses)


def changed_condition(spec: TableSpec, q: str = '"') -> str | None:
    """WHEN MATCHED AND <this>: update only rows whose data changed, so a re-run rewrites no files.

    Null-safe (`IS DISTINCT FROM`); each term is parenthesised because DataFusion's parser binds
    `a IS DISTINCT FROM b OR c` as `a IS DISTINCT FROM (b OR c)`.
    """
    skipped = {*spec.keys, *spec.partition_by, *LINEAGE_COLUMNS}  # keys and partitions already matched in ON
    compared = [c for c in spec.schema.names if c not in skipped]
    if not compared:
        return None
    return " OR ".join(f"({TARGET}.{quote(c, q)} IS DISTINCT FROM {SOURCE}.{quote(c, q)})" for c in compared)


def update_assignments(spec: TableSpec, q: str = '"') -> dict[str, str] | None:
    """WHEN MATCHED THEN UPDATE SET {column: expression} (column names unquoted): the source's value, except
    `spec.monotonic` columns, which keep the greater (or lesser) of old and new; None (UPDATE SET *) without.

    Both engines' greatest/least skip NULLs, so a NULL on either side keeps the other value."""
    if not spec.monotonic:
        return None
    out = {}
    for column in spec.schema.names:
        target, source = f"{TARGET}.{quote(column, q)}", f"{SOURCE}.{quote(column, q)}"
        how = spec.monotonic.get(column)
        out[column] = f"{how}({target}, {source})" if how else source
    return out
