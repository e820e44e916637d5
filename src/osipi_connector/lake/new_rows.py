"""Which rows of a MERGE source provably have no match in the target, read from the files' statistics.

Every Delta file records min/max per column. A source row whose key lies outside the key box
(min..max of every key column) of every file in its partitions cannot match any target row, so it can be
appended instead of MERGEd: that is the whole first load of a window, most of every run whose windows are
new, and it is what keeps MERGE time and memory from growing with the table (a MERGE joins against every
file its ON clause cannot prune). The decision is read from the table version being written, not from
watermarks, so it stays right after a crash between data and watermarks: rows written by the crashed run
sit inside some file's box and go through MERGE again.

Statistics are bounds, not values: delta-rs stores timestamps truncated to milliseconds (the max may be
below the true max, so boxes are widened by 1 ms) and long strings truncated (min is a prefix, max is
rounded up); a missing statistic means "unbounded". Float keys are never used to decide (NaN ordering).
"""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable

from osipi_connector.lake.schemas import TableSpec

MAX_CANDIDATE_FILES = 256
"""Above this many files overlapping the batch's key range, everything is MERGEd (checking would cost more)."""

_SLACK = timedelta(milliseconds=1)  # delta-rs' timestamp statistics have millisecond precision


def _bounded(dtype: pa.DataType) -> bool:
    return (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_timestamp(dtype)
        or pa.types.is_date(dtype)
        or pa.types.is_integer(dtype)
    )


def split_new_rows(table: DeltaTable, spec: TableSpec, source: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(rows that cannot match any target row, rows that might): the first can be appended, the second merged."""
    maybe = might_match(table, spec, source)
    if maybe is None:
        return source, source.slice(0, 0)
    if pc.all(maybe).as_py():
        return source.slice(0, 0), source
    return source.filter(pc.invert(maybe)), source.filter(maybe)


def might_match(table: DeltaTable, spec: TableSpec, source: pa.Table) -> pa.Array | None:
    """Per source row, whether its key lies inside some file's key box (it might match); None: no row does.
    A mask rather than two tables, so a caller cutting the new rows further copies them once."""
    keys = [k for k in spec.keys if _bounded(source.schema.field(k).type)]
    everything = pa.repeat(pa.scalar(True), source.num_rows)
    if not keys or source.num_rows == 0:
        return everything
    files = _candidate_files(pa.table(table.get_add_actions(flatten=True)), spec, source, keys)
    if files is None:
        return everything
    maybe = pa.repeat(pa.scalar(False), source.num_rows)
    for box in files:
        inside = None
        for key, (low, high) in box.items():
            column = source[key]
            term = pc.and_(pc.greater_equal(column, low), pc.less_equal(column, high))
            inside = term if inside is None else pc.and_(inside, term)
        if inside is None:  # a file with no usable statistic may hold anything
            return everything
        maybe = pc.or_(maybe, inside)
    return maybe if pc.any(maybe).as_py() else None


def _candidate_files(
    actions: pa.Table, spec: TableSpec, source: pa.Table, keys: list[str]
) -> list[dict[str, tuple[pa.Scalar, pa.Scalar]]] | None:
    """Key boxes of the files in the batch's partitions overlapping the batch's own box; None: too many."""
    if actions.num_rows == 0:
        return []
    mask = pa.repeat(pa.scalar(True), actions.num_rows)
    for column in spec.partition_by:
        name = f"partition.{column}"
        if name in actions.column_names:
            values = pc.unique(source[column]).cast(actions[name].type)
            mask = pc.and_(mask, pc.fill_null(pc.is_in(actions[name], value_set=values), True))
    bounds: dict[str, tuple[pa.Array, pa.Array]] = {}
    for key in keys:
        dtype = source.schema.field(key).type
        batch = pc.min_max(source[key])
        low, high = _stat(actions, f"min.{key}", dtype), _stat(actions, f"max.{key}", dtype)
        if pa.types.is_timestamp(dtype):
            low, high = pc.subtract(low, pa.scalar(_SLACK)), pc.add(high, pa.scalar(_SLACK))
        bounds[key] = (low, high)
        # files entirely below or above the batch on this key cannot overlap it (null statistic: unbounded)
        below = pc.fill_null(pc.less(high, batch["min"]), False)
        above = pc.fill_null(pc.greater(low, batch["max"]), False)
        mask = pc.and_(mask, pc.invert(pc.or_(below, above)))
    rows = pc.indices_nonzero(mask).to_pylist()
    if len(rows) > MAX_CANDIDATE_FILES:
        return None
    boxes = []
    for row in rows:
        box = {}
        for key, (low, high) in bounds.items():
            lo, hi = low[row], high[row]
            if lo.is_valid and hi.is_valid:
                box[key] = (lo, hi)
        boxes.append(box)
    return boxes


def _stat(actions: pa.Table, name: str, dtype: pa.DataType) -> pa.Array:
    """A statistics column as `dtype`, all null when the log has none (no statistic: unbounded)."""
    if name not in actions.column_names:
        return pa.nulls(actions.num_rows, dtype)
    column = actions[name].combine_chunks()
    return column if column.type == dtype else column.cast(dtype)
