"""The MERGE conditions both sinks use, written once as SQL text.

delta-rs (DataFusion) and Spark SQL accept the same expression grammar for these conditions; only
identifier quoting differs, so callers pass their quote character.

The ON clause carries, besides the key equalities, literal bounds on the target: the batch's partition values
and the min/max of each key over the batch (`key_ranges`). Both engines skip every file whose statistics lie
outside such literal bounds before joining; delta-rs does NOT derive them from the source itself in its
default streamed mode, so without them a MERGE reads every file of the batch's days (issue 12: an hourly run
cost grew with the day's partition). The bounds are implied by the key equalities, so they change no result.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from osipi_connector.lake.schemas import TableSpec

LINEAGE_COLUMNS = ("ingested_at", "run_id")
"""Bookkeeping columns: a re-read row that differs only here is left as it is (first ingestion wins)."""

TARGET = "t"
SOURCE = "s"


def quote(name: str, q: str) -> str:
    return f"{q}{name.replace(q, q + q)}{q}"


def sql_literal(value: object, timestamp_as_text: bool = False) -> str | None:
    """A SQL literal both engines read identically, or None when there is no safe spelling (then no pruning).
    `timestamp_as_text`: a UTC time as a plain string literal, the spelling delta-rs' file-pruning predicates
    (`DeltaTable.file_uris` / `to_pyarrow_dataset`) compare with a timestamp column; they reject `TIMESTAMP '...'`."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:  # a naive time's zone is a guess: no literal
            return None
        text = value.astimezone(dt.timezone.utc).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
        return f"'{text}+00:00'" if timestamp_as_text else f"TIMESTAMP '{text}+00:00'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    if isinstance(value, str) and not any(c in value for c in "'\\\n"):
        return f"'{value}'"
    return None


def _column(name: str, q: str, alias: str | None) -> str:
    return f"{alias}.{quote(name, q)}" if alias else quote(name, q)


def partition_filter(
    spec: TableSpec, partition_values: Mapping[str, Iterable[Any]], q: str, alias: str | None = TARGET
) -> list[str]:
    """`t.<part> IN (<literals>)` per partition column: lets the engine skip partitions the batch does not touch."""
    clauses = []
    for column in spec.partition_by:
        literals = [sql_literal(v) for v in sorted(set(partition_values.get(column, ())))]
        texts = [text for text in literals if text is not None]
        if not texts or len(texts) != len(literals):  # no value, or one without a safe literal: no pruning
            continue
        clauses.append(f"{_column(column, q, alias)} IN ({', '.join(texts)})")
    return clauses


STATISTICS_SLACK = dt.timedelta(milliseconds=1)
"""Timestamp bounds are widened by this much: Delta statistics keep timestamps to the millisecond."""


def key_ranges(spec: TableSpec, source: pa.Table) -> dict[str, tuple[object, object]]:
    """(min, max) over `source` of each key column that has a literal both engines read (strings, integers,
    UTC timestamps — widened by STATISTICS_SLACK); keys without one are left out (no pruning on them)."""
    ranges: dict[str, tuple[object, object]] = {}
    if source.num_rows == 0:
        return ranges
    for key in spec.keys:
        dtype = source.schema.field(key).type
        if not (pa.types.is_string(dtype) or pa.types.is_integer(dtype) or pa.types.is_timestamp(dtype)):
            continue
        bounds = pc.min_max(source[key])
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if low is None or high is None:
            continue
        if isinstance(low, dt.datetime):
            low, high = low - STATISTICS_SLACK, high + STATISTICS_SLACK
        ranges[key] = (low, high)
    return ranges


def range_filter(
    key_ranges: Mapping[str, tuple[object, object]], q: str, alias: str | None = TARGET, timestamp_as_text: bool = False
) -> list[str]:
    """`t.<key> >= <low>` and `t.<key> <= <high>` per range that has safe literals."""
    clauses = []
    for column, (low, high) in key_ranges.items():
        low_literal, high_literal = sql_literal(low, timestamp_as_text), sql_literal(high, timestamp_as_text)
        if low_literal is None or high_literal is None:
            continue
        target = _column(column, q, alias)
        clauses += [f"{target} >= {low_literal}", f"{target} <= {high_literal}"]
    return clauses


def file_predicate(
    spec: TableSpec, partition_values: Mapping[str, Iterable[Any]], key_ranges: Mapping[str, tuple[object, object]]
) -> str:
    """The same literal bounds as the ON clause, unaliased: picks the files a read of the batch's box needs."""
    clauses = partition_filter(spec, partition_values, '"', None) + range_filter(key_ranges, '"', None, True)
    return " AND ".join(clauses)


def merge_condition(
    spec: TableSpec,
    partition_values: Mapping[str, Iterable[Any]] | None = None,
    q: str = '"',
    key_ranges: Mapping[str, tuple[object, object]] | None = None,
) -> str:
    """ON clause: literal bounds first (partition IN lists, key ranges: file pruning), then column equality on
    the partitions and the spec's keys."""
    clauses = partition_filter(spec, partition_values or {}, q) + range_filter(key_ranges or {}, q)
    clauses += [f"{TARGET}.{quote(c, q)} = {SOURCE}.{quote(c, q)}" for c in spec.partition_by if c not in spec.keys]
    clauses += [f"{TARGET}.{quote(c, q)} = {SOURCE}.{quote(c, q)}" for c in spec.keys]
    return " AND ".join(clauses)


def latest_sql(table: str, column: str, by: str, q: str = '"') -> str:
    """The latest `column` per value of `by` (`Sink.latest`): an aggregate, so no engine holds the table's rows."""
    return f"SELECT {quote(by, q)} AS item, max({quote(column, q)}) AS latest FROM {table} GROUP BY {quote(by, q)}"


def compared_columns(spec: TableSpec) -> list[str]:
    """The columns whose difference makes a matched row "changed": all but keys, partitions and lineage."""
    skipped = {*spec.keys, *spec.partition_by, *LINEAGE_COLUMNS}  # keys and partitions already matched in ON
    return [c for c in spec.schema.names if c not in skipped]


def changed_condition(spec: TableSpec, q: str = '"') -> str | None:
    """WHEN MATCHED AND <this>: update only rows whose data changed, so a re-run rewrites no files.

    Null-safe (`IS DISTINCT FROM`); each term is parenthesised because DataFusion's parser binds
    `a IS DISTINCT FROM b OR c` as `a IS DISTINCT FROM (b OR c)`.
    """
    compared = compared_columns(spec)
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
