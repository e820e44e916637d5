"""Delete a table's rows of some items within time ranges, on either engine (the change feed's removals).

MERGE never deletes, so a value PI removed stays in `pi_timeseries` until something deletes it: the change
feed (extract/change_feed.py) deletes each affected (tag, time range) and MERGEs the range as PI now holds
it. One DELETE per chunk of ranges, its predicate carrying the ranges' partitions so both engines skip the
other days' files. Kept apart from the sinks' write path: one small function per engine, chosen like
`lake/upgrade.py` chooses, by `sink.engine`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from osipi_connector.lake.merge_conditions import quote, sql_literal
from osipi_connector.lake.schemas import TableSpec

Range = tuple[str, datetime, datetime]  # item (the spec's first key), first and last time, both inclusive
CHUNK = 200  # ranges per DELETE: keeps the predicate a size both SQL parsers take quickly


def delete_ranges(sink: Any, spec: TableSpec, ranges: Sequence[Range]) -> int:
    """Delete the rows of `spec` whose first key is the range's item and whose `spec.time_column` lies in
    [first, last]; the number of rows deleted. Idempotent, so a DELETE that lost a commit race to a
    concurrent writer simply runs again (through ConflictRetry when `sink` is one)."""
    retrying = getattr(sink, "retrying", None)  # lake/conflict_retry.ConflictRetry: a lost commit race re-runs
    inner = getattr(sink, "sink", sink)
    delete = _delete_spark if sink.engine == "spark" else _delete_delta_rs
    deleted = 0
    for at in range(0, len(ranges), CHUNK):
        chunk = ranges[at : at + CHUNK]

        def call(chunk: Sequence[Range] = chunk) -> int:
            return delete(inner, spec, chunk)

        deleted += retrying("delete", spec, call) if retrying is not None else call()
    return deleted


def predicate(spec: TableSpec, ranges: Sequence[Range], q: str, timestamp_as_text: bool = False) -> str:
    """`(item = .. AND time BETWEEN ..) OR ...`, AND the partitions (dates) the ranges touch.
    `timestamp_as_text`: times as plain strings (delta-rs compares `TIMESTAMP '…'`, nanoseconds, with a
    microsecond column only after a cast it does not make)."""
    if spec.time_column is None:
        raise ValueError(f"{spec.name} has no time column: its rows cannot be deleted by time range")
    item, time = quote(spec.keys[0], q), quote(spec.time_column, q)
    clauses = []
    days: set[object] = set()
    for key, first, last in ranges:
        literals = (sql_literal(key), sql_literal(first, timestamp_as_text), sql_literal(last, timestamp_as_text))
        if None in literals:
            raise ValueError(f"cannot write a SQL literal for the range {key!r} {first} .. {last}")
        clauses.append(f"({item} = {literals[0]} AND {time} >= {literals[1]} AND {time} <= {literals[2]})")
        day = first.date()
        while day <= last.date():
            days.add(day)
            day += timedelta(days=1)
    where = " OR ".join(clauses)
    if spec.partition_by == ("partition_date",):
        dates = ", ".join(str(sql_literal(d)) for d in sorted(days))  # type: ignore[type-var]
        where = f"{quote('partition_date', q)} IN ({dates}) AND ({where})"
    return where


def _delete_delta_rs(sink: Any, spec: TableSpec, ranges: Sequence[Range]) -> int:
    from deltalake import DeltaTable

    from osipi_connector.lake.delta_sink import _table_lock

    if not sink.exists(spec):
        return 0
    with _table_lock(sink.path(spec)):  # writers of one table take turns (see delta_sink)
        metrics = DeltaTable(sink.path(spec)).delete(predicate(spec, ranges, '"', timestamp_as_text=True))
    return int(metrics.get("num_deleted_rows", 0))


def _delete_spark(sink: Any, spec: TableSpec, ranges: Sequence[Range]) -> int:
    from osipi_connector.lake.spark_sql import full_name

    sink.ensure(spec)
    rows = sink.spark.sql(f"DELETE FROM {full_name(spec, sink.location)} WHERE {predicate(spec, ranges, '`')}")
    result = rows.collect()
    return int(result[0]["num_affected_rows"]) if result and "num_affected_rows" in result[0].asDict() else 0
