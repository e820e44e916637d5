"""Which rows of a MERGE source would change the target: keys it does not hold, and keys whose data differs.

A re-read window (the lookback of an hourly run, a retried unit, a crash repair) is almost all rows the table
already holds, unchanged. delta-rs 1.6's MERGE is slow and memory-hungry exactly there: when a file it must
rewrite (one changed row is enough) holds many rows that matched but that `WHEN MATCHED AND <changed>` leaves
as they are. Measured on a 143,561-row lookback against its one file with 1 % edited values: 19 s and 1.4 GB,
against 0.5 s and 60 MB for the same MERGE given only the 1,451 edited rows (benchmarks/pi_hourly.py,
docs/benchmarks.md). So the sink reads the target rows inside the source's key box — only the files whose
statistics overlap it, only the keys and the compared columns — matches them with the source on the keys
(packed into one int64 per row and binary-searched: lake/key_codes.py), and drops the rows that are already
there as they are. Only new and changed rows are written.

Changed rows come back grouped by the file that holds their current version, for one MERGE per file: a MERGE
writes everything it rewrites into one new file, so a MERGE touching two lookback files would fuse them, the
next commit (whose tags overlap the fused file) would rewrite it again with the next file, and so on — at
30,000 tags one hourly run copied 13 M rows that way instead of ~3 M.

"The same" is `IS NOT DISTINCT FROM` on every column MERGE compares (`merge_conditions.compared_columns`), with
NaN equal to NaN (SQL's `IS DISTINCT FROM` calls NaN changed, so a re-read NaN would be rewritten forever).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import DeltaTable

from osipi_connector.lake import key_codes, merge_conditions
from osipi_connector.lake.schemas import TableSpec

_SOURCE_ROW = "__osipi_source_row"
_TARGET_ROW = "__osipi_target_row"
_FILE = "__filename"  # pyarrow.dataset's special column: the file a row was read from


def comparable(spec: TableSpec) -> bool:
    """Whether Arrow can compare every compared column and join on every key (lists, maps, structs: no)."""
    names = [*spec.keys, *merge_conditions.compared_columns(spec)]
    return all(_flat(spec.schema.field(name).type) for name in names)


def _flat(dtype: pa.DataType) -> bool:
    return not (pa.types.is_nested(dtype) or pa.types.is_dictionary(dtype))


def split_changes(table: DeltaTable, spec: TableSpec, source: pa.Table) -> tuple[pa.Table, list[pa.Table]]:
    """(source rows whose key the target lacks, source rows whose key it holds with different data, grouped by
    the file holding that key); the remaining source rows are in the target as they are. `source` must have
    unique keys (merge_source)."""
    keys, compared = list(spec.keys), merge_conditions.compared_columns(spec)
    target = _target_rows(table, spec, source, [*keys, *compared, _FILE])
    if target.num_rows == 0:
        return source, []
    mine_rows, their_rows = _pairs(source, target, keys)  # in source (key) order: tight file statistics
    missing = np.ones(source.num_rows, bool)
    missing[mine_rows] = False
    new = source.filter(pa.array(missing))
    if len(mine_rows) == 0:
        return new, []
    mine, theirs = source.take(pa.array(mine_rows)), target.take(pa.array(their_rows))
    differs = pa.repeat(pa.scalar(False), len(mine_rows))
    for column in compared:
        differs = pc.or_(differs, pc.invert(_same(mine[column], theirs[column])))
    changed, files = mine.filter(differs), theirs[_FILE].filter(differs)
    return new, [changed.filter(pc.equal(files, name)) for name in pc.unique(files).to_pylist()]


def _pairs(source: pa.Table, target: pa.Table, keys: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(source row, target row) of every key both hold, in source order: packed int64 keys and a binary search
    (key_codes), or an Arrow hash join when the keys do not pack."""
    packed = key_codes.packed_keys(source, keys, target)
    if packed is not None:
        return key_codes.matches(*packed)
    left = source.select(keys).append_column(_SOURCE_ROW, pa.array(range(source.num_rows), pa.int64()))
    right = target.select(keys).append_column(_TARGET_ROW, pa.array(range(target.num_rows), pa.int64()))
    pairs = left.join(right, keys, join_type="inner", use_threads=False).sort_by(_SOURCE_ROW)
    return pairs[_SOURCE_ROW].to_numpy(), pairs[_TARGET_ROW].to_numpy()


def _target_rows(table: DeltaTable, spec: TableSpec, source: pa.Table, columns: list[str]) -> pa.Table:
    """`columns` of the target rows inside the source's key box: files picked by their statistics, then rows."""
    ranges = merge_conditions.key_ranges(spec, source)
    partitions = {c: pc.unique(source[c]).to_pylist() for c in spec.partition_by}
    predicate = merge_conditions.file_predicate(spec, partitions, ranges)
    # the spec's schema: delta-rs would read strings as string_view, which Arrow cannot compare with string
    dataset = table.to_pyarrow_dataset(file_pruning_predicate=predicate or None, schema=spec.schema)
    rows = None
    for column, (low, high) in ranges.items():
        if pa.types.is_string(source.schema.field(column).type):
            # files written by delta-rs' MERGE store strings as string_view, which Arrow's scan filter cannot
            # compare with a string (pyarrow 26): the join drops rows outside the range anyway
            continue
        field = ds.field(column)
        term = (field >= pa.scalar(low, source.schema.field(column).type)) & (
            field <= pa.scalar(high, source.schema.field(column).type)
        )
        rows = term if rows is None else rows & term
    for column, values in partitions.items():
        term = ds.field(column).isin(pa.array(values, source.schema.field(column).type))
        rows = term if rows is None else rows & term
    return dataset.to_table(columns=columns, filter=rows)


def _same(a: pa.ChunkedArray | pa.Array, b: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Null-safe equality (`IS NOT DISTINCT FROM`), NaN equal to NaN."""
    same = pc.or_(pc.fill_null(pc.equal(a, b), False), pc.and_(pc.is_null(a), pc.is_null(b)))
    if pa.types.is_floating(a.type):
        both_nan = pc.fill_null(pc.and_(pc.is_nan(a), pc.is_nan(b)), False)
        same = pc.or_(same, both_nan)
    return same
