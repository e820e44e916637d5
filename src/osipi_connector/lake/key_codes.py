"""A batch's composite keys as one int64 per row, so key questions become NumPy sorts and binary searches.

The timeseries key (tag WebID, timestamp, value_seq) spans little inside one batch: a few thousand tags,
hours of microseconds, a handful of value_seq. Each key column becomes a small non-negative code (strings:
their index among the batch's distinct values; timestamps, dates, integers: the distance from the batch's
minimum), and the codes are packed mixed-radix into one int64 when the product of their ranges fits in 62
bits. A 1 M-row batch is then proved key-unique by one `np.sort` (instead of a three-key lexsort) and a
lookback overlap is matched against the table's rows by `np.searchsorted` (instead of an Arrow hash join on
a string, a timestamp and an int): measured on the 30,000-tag hourly run, those two were 40 % of the sink's
time (docs/benchmarks.md, benchmarks/pi_hourly.py). Nulls, floats, nested types or keys too wide to pack:
None, and the caller takes its general path.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_LIMIT = 1 << 62  # packed codes stay below this: room for -1 (no match) and for differences


def _numbers(column: pa.ChunkedArray | pa.Array) -> np.ndarray | None:
    """Timestamps, dates and integers as int64 (their physical values); None for other types."""
    dtype = column.type
    if pa.types.is_timestamp(dtype) or pa.types.is_date64(dtype):
        width = pa.int64()
    elif pa.types.is_date32(dtype):
        width = pa.int32()
    elif pa.types.is_integer(dtype):
        return np.asarray(column.to_numpy(), dtype=np.int64) if len(column) else np.zeros(0, np.int64)
    else:
        return None
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return np.asarray(array.view(width).to_numpy(zero_copy_only=False), dtype=np.int64)


def _is_string(dtype: pa.DataType) -> bool:
    return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)


def packed_keys(table: pa.Table, keys: list[str], other: pa.Table | None = None) -> tuple[np.ndarray, ...] | None:
    """One int64 per row of `table`, equal exactly where the rows' `keys` are equal; with `other`, also one per
    row of `other` on the same scale, -1 where that row's key is not among `table`'s possible keys. None when
    the keys cannot be packed (a null, a type without codes, ranges too wide): use the general path."""
    tables = [table] if other is None else [table, other]
    if any(t[key].null_count for t in tables for key in keys):
        return None
    packed = [np.zeros(t.num_rows, np.int64) for t in tables]
    valid = [np.ones(t.num_rows, bool) for t in tables]
    scale = 1
    for key in keys:
        dtype = table.schema.field(key).type
        if _is_string(dtype):
            column = table[key]
            if other is None:  # one hashing pass
                encoded = column.combine_chunks().dictionary_encode()
                codes = [np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.int64)]
                radix = len(encoded.dictionary)
            else:
                distinct = pc.unique(column)
                radix = len(distinct)
                codes = []
                for t in tables:
                    found = pc.index_in(t[key], value_set=distinct)  # null: a value `table` does not have
                    codes.append(np.asarray(pc.fill_null(found, -1).to_numpy(), np.int64))
        else:
            values = [_numbers(t[key]) for t in tables]
            if values[0] is None or any(v is None for v in values):
                return None
            low = int(values[0].min()) if len(values[0]) else 0
            radix = (int(values[0].max()) - low + 1) if len(values[0]) else 1
            codes = [v - low for v in values if v is not None]
        scale *= max(radix, 1)
        if scale >= _LIMIT:
            return None
        for i, code in enumerate(codes):
            valid[i] &= (code >= 0) & (code < radix)
            packed[i] = packed[i] * radix + code
    return tuple(np.where(ok, p, -1) for p, ok in zip(packed, valid, strict=True))


def matches(source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(source rows, target rows) whose packed keys are equal, in source order; `target` keys are unique
    (a table's keys), -1 never matches."""
    if len(target) == 0 or len(source) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    order = np.argsort(target, kind="stable")
    ordered = target[order]
    at = np.minimum(np.searchsorted(ordered, source), len(ordered) - 1)
    hit = (ordered[at] == source) & (source >= 0)
    return np.flatnonzero(hit), order[at[hit]]
