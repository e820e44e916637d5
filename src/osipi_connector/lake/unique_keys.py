"""A fast proof that a batch's keys are unique, so the exact (and slower) group-by check runs only on doubt.

The keys become one packed int64 per row (lake/key_codes.py); a batch already in key order is proved unique
in one vectorised pass, anything else (a commit of units that finished in any order) after one `np.sort`.
Keys too wide to pack: int64 codes per column and a numpy lexsort. A group-by over a million string keys
costs ~1 s; this costs ~50-100 ms. Nulls or other key types: no proof (the caller falls back).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from osipi_connector.lake.key_codes import packed_keys


def _codes(column: pa.ChunkedArray) -> np.ndarray | None:
    if column.null_count:
        return None
    dtype = column.type
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        encoded = column.combine_chunks().dictionary_encode()
        return encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    if pa.types.is_timestamp(dtype) or pa.types.is_date(dtype):
        width = pa.int64() if pa.types.is_timestamp(dtype) or pa.types.is_date64(dtype) else pa.int32()
        return column.combine_chunks().view(width).to_numpy(zero_copy_only=False).astype(np.int64)
    if pa.types.is_integer(dtype):
        return column.to_numpy().astype(np.int64)
    return None


def _strictly_increasing(codes: list[np.ndarray]) -> bool:
    """Rows strictly increase in lexicographic key order (so no two rows share a key)."""
    later = np.zeros(len(codes[0]) - 1, dtype=bool)  # decided: this row is greater than the previous one
    tied = np.ones(len(codes[0]) - 1, dtype=bool)  # all key columns so far equal to the previous row's
    for code in codes:
        step = np.sign(np.diff(code))
        later |= tied & (step > 0)
        tied &= step == 0
    return bool(later.all())


def provably_unique(table: pa.Table, keys: list[str]) -> bool:
    """True when no two rows share all `keys`; False means "not proved" (maybe duplicates, maybe a key type
    this check does not handle)."""
    if table.num_rows < 2:
        return True
    packed = packed_keys(table, keys)
    if packed is not None:  # one int64 per row: one sort, not a lexsort over every key column
        step = np.diff(packed[0])
        return bool((step > 0).all() or (np.diff(np.sort(packed[0])) > 0).all())
    maybe = [_codes(table[key]) for key in keys]
    codes = [code for code in maybe if code is not None]
    if len(codes) != len(maybe):
        return False
    if _strictly_increasing(codes):
        return True
    order = np.lexsort(codes[::-1])  # lexsort sorts by its last key first
    return _strictly_increasing([code[order] for code in codes])
