"""The local sink: Delta tables on disk written with delta-rs (`deltalake`), no JVM, no cluster.

Tables live at `<root>/<catalog>/<schema>/<table>`, the same three names as on Databricks, so a local run and a
Unity Catalog run differ only in the Sink object. Writers of one table take turns — threads of a process
under a lock, processes under an flock on `<table>/_osipi_writer.lock` (a local or POSIX-locking file system) —
so a backfill beside an incremental run, or two datasets' runs, neither conflict nor double-append. OPTIMIZE
and VACUUM do not wait for the lock: a commit that loses to them fails cleanly (`CommitFailedError`, never a
corrupt table) and the runner's ConflictRetry (lake/conflict_retry.py) re-runs it and counts it.

`merge` appends the rows that provably have no match (lake/new_rows.py: outside every file's key statistics),
drops the rows the table already holds as they are and appends the new keys among the rest
(lake/changed_rows.py: a read of only the files overlapping the batch), and MERGEs only the changed rows, with
literal key bounds that make delta-rs skip every other file: an hourly run costs its new data, not the day's
partition (docs/lake.md, issue 12). Appended rows at or after the caller's `reread_from` (the next run's
lookback) go into files of their own, so the next run's MERGE rewrites only those. The proofs hold for the
version read under the lock, which every writer of the table holds; `append_new_rows=False` sends new and
changed rows through MERGE.

Every write (append, MERGE, optimize) uses `writer_properties(spec)`: standard Parquet that Spark and
Databricks read, ZSTD level 1 (files ~30 % smaller than delta-rs' default Snappy), no dictionary for columns
whose values rarely repeat, and min/max statistics only on the keys and `spec.stats_columns` (the keys are
what `new_rows` and MERGE pruning read). Together ~10 % less CPU per row than delta-rs' defaults
(benchmarks/lake_write.py).
"""

from __future__ import annotations

import fcntl
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import ColumnProperties, DeltaTable, QueryBuilder, WriterProperties, write_deltalake
from deltalake.exceptions import TableNotFoundError

from osipi_connector.lake import merge_conditions
from osipi_connector.lake.changed_rows import comparable, split_changes
from osipi_connector.lake.new_rows import might_match
from osipi_connector.lake.schemas import TableSpec
from osipi_connector.lake.sink import Location, Sink, WriteResult
from osipi_connector.lake.validate import (
    SchemaMismatchError,
    column_differences,
    conform,
    merge_source,
    read_schema,
)

if TYPE_CHECKING:
    from osipi_connector.config import ConnectorConfig
    from osipi_connector.executor import UnitExecutor

log = logging.getLogger(__name__)
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")
_LOCKS: dict[Path, threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def writer_properties(spec: TableSpec) -> WriterProperties:
    """The Parquet options of every file the sink writes for `spec` (see the module docstring for why)."""
    stats = None if not spec.stats_columns else {*spec.keys, *spec.stats_columns}
    columns = {
        f.name: ColumnProperties(
            dictionary_enabled=f.name not in spec.plain_columns,
            # CHUNK: one min/max per column chunk, which is all the Delta log keeps (no page index)
            statistics_enabled="CHUNK" if stats is None or f.name in stats else "NONE",
        )
        for f in spec.schema
    }
    return WriterProperties(compression="ZSTD", compression_level=1, column_properties=columns)


WRITER_LOCK = "_osipi_writer.lock"
"""In the table folder; Delta readers and VACUUM skip names starting with '_'."""


@contextmanager
def _table_lock(path: Path) -> Iterator[None]:
    """Writers of one table take turns: threads of this process (a lock) and other processes (an exclusive
    flock on WRITER_LOCK). The append of new rows is a blind commit that a concurrent append of the same new
    keys would not conflict with; taking turns makes the second writer see the first one's files."""
    with _LOCKS_GUARD:
        lock = _LOCKS.setdefault(path.resolve(), threading.Lock())
    with lock, open(path / WRITER_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


REOPEN_AFTER_VERSIONS = 100  # a cached table object is opened afresh after this many commits (see DeltaSink)


class DeltaSink:
    """Sink on local Delta tables; see the module docstring for the layout and the one-writer rule."""

    engine = "delta-rs"

    def __init__(self, root: Path | str, location: Location | None = None, append_new_rows: bool = True) -> None:
        self.root = Path(root)
        # False: every row goes through MERGE. Needed only when several PROCESSES may write the same new keys
        # at the same moment: an append is a blind commit, so two racing appends would both land.
        self.append_new_rows = append_new_rows
        self.location = location or Location()
        # path -> the table as this sink last wrote it, brought up to date with `update_incremental` under the
        # writer lock: re-opening replays the log since the last checkpoint and every file's statistics, which
        # at ~1,300 files cost ~50 ms per open, 4-5 opens per commit — an hourly run slowed as the day grew.
        # But a delta-rs table object slows down with every commit it has seen (~0.2 ms a merge per 100 merges:
        # a backfill of thousands of commits in one process crawled), so after REOPEN_AFTER_VERSIONS it is
        # opened afresh. Also (table, identity of its log, version it was opened at).
        self._written: dict[Path, tuple[DeltaTable, tuple[int, int] | None, int]] = {}
        for key in ("catalog", "schema", "checkpoint_schema"):
            value = getattr(self.location, key)
            if not _NAME.fullmatch(value):
                raise ValueError(
                    f"unity_catalog.{key} {value!r} cannot name a local folder: use letters, digits, '_' or '-'"
                )

    def path(self, spec: TableSpec) -> Path:
        return self.root / self.location.catalog / self.location.schema_for(spec) / spec.name

    def table_name(self, spec: TableSpec) -> str:
        return str(self.path(spec))

    def exists(self, spec: TableSpec) -> bool:
        return DeltaTable.is_deltatable(str(self.path(spec)))

    def _open(self, spec: TableSpec) -> DeltaTable | None:
        try:
            return DeltaTable(self.path(spec))
        except TableNotFoundError:
            return None

    def ensure(self, spec: TableSpec) -> None:
        table = self._open(spec)
        if table is None:
            self.path(spec).mkdir(parents=True, exist_ok=True)
            DeltaTable.create(
                self.path(spec),
                spec.schema,
                mode="ignore",
                partition_by=list(spec.partition_by) or None,
                name=spec.name,
                description=spec.comment or None,
            )
            return
        _check_existing(spec, table)

    def merge(self, spec: TableSpec, data: pa.Table, reread_from: datetime | None = None) -> WriteResult:
        """Upsert by the spec's keys. Rows whose keys lie outside every existing file's statistics are appended
        (they cannot match; see `new_rows`), the rest are MERGEd: every commit is idempotent on a re-run.
        Appended rows at or after `reread_from` (the next run's lookback) go into files of their own, so the
        next run's MERGE reads and rewrites those small files, not the rest of the day."""
        source, _ = merge_source(spec, data)
        if source.num_rows == 0:
            return WriteResult(inserted=0, updated=0)
        if self.path(spec) not in self._written:
            self.ensure(spec)
        with _table_lock(self.path(spec)):  # a conflict with a writer that does not lock: ConflictRetry re-runs it
            appended, metrics = self._write_once(spec, source, reread_from)
        return WriteResult(
            inserted=appended + metrics.get("num_target_rows_inserted", 0),
            updated=metrics.get("num_target_rows_updated", 0),
        )

    def _write_once(self, spec: TableSpec, source: pa.Table, reread_from: datetime | None) -> tuple[int, dict]:
        """(rows appended, MERGE metrics) against the table's current version."""
        clock = time.perf_counter()
        table = self._current(spec)
        if self.append_new_rows:  # per row: might it match (inside some file's key statistics)?
            maybe_mask = might_match(table, spec, source)
            if maybe_mask is None:
                maybe_mask = pa.repeat(pa.scalar(False), source.num_rows)
            maybe = source.filter(maybe_mask)
        else:  # every row is a MERGE candidate
            maybe_mask, maybe = pa.repeat(pa.scalar(True), source.num_rows), source
        overlap, merges = maybe.num_rows, [maybe] if maybe.num_rows else []
        new_rows, new_mask = source, pc.invert(maybe_mask)
        if maybe.num_rows and comparable(spec):
            # rows already in the table as they are are dropped: only new and changed rows are written, and the
            # changed ones one MERGE per file they live in (a MERGE fuses the files it rewrites: changed_rows.py)
            fresh, merges = split_changes(table, spec, maybe)
            if self.append_new_rows and fresh.num_rows:  # new keys among the candidates: appended with the rest
                new_rows = pa.concat_tables([source, fresh])  # zero-copy
                chunks = new_mask.chunks if isinstance(new_mask, pa.ChunkedArray) else [new_mask]
                new_mask = pa.chunked_array([*chunks, pa.repeat(pa.scalar(True), fresh.num_rows)], pa.bool_())
            elif fresh.num_rows:
                merges.insert(0, fresh)
        # the new rows are cut straight from the batch into the appends: one copy of a commit's rows
        appends = _reread_apart(spec, new_rows, reread_from, new_mask) if self.append_new_rows else []
        split = time.perf_counter()
        for part in appends:
            write_deltalake(table, part, mode="append", writer_properties=writer_properties(spec))
        appended = sum(part.num_rows for part in appends)
        log.debug(
            "%s: %d rows appended, %d inside existing files' statistics of which %d to MERGE in %d commit(s) "
            "(split %.2f s, append %.2f s)",
            spec.name,
            appended,
            overlap,
            sum(m.num_rows for m in merges),
            len(merges),
            split - clock,
            time.perf_counter() - split,
        )
        totals: dict[str, int] = {}
        for rows in merges:
            metrics = self._merge_rows(table, spec, rows)
            for key in ("num_target_rows_inserted", "num_target_rows_updated"):
                totals[key] = totals.get(key, 0) + metrics.get(key, 0)
        return appended, totals

    def _current(self, spec: TableSpec) -> DeltaTable:
        """The table at its latest version: the one this sink last wrote, with the commits since (anyone's) read
        incrementally — but opened afresh the first time, and whenever its first log entry is not the same file
        as then (the table was deleted and created again: its log restarted, and a stale state would commit
        past its end)."""
        path = self.path(spec)
        identity = _log_identity(path)
        cached = self._written.get(path)
        if cached is not None and identity is not None and cached[1] == identity:
            table, _, opened_at = cached
            if table.version() - opened_at < REOPEN_AFTER_VERSIONS:  # else not worth bringing up to date
                table.update_incremental()
                return table
        table = DeltaTable(path)
        self._written[path] = (table, identity, table.version())
        return table

    def _merge_rows(self, table: DeltaTable, spec: TableSpec, rows: pa.Table) -> dict:
        """One MERGE of `rows`, its ON clause bounded by their partitions and key ranges: delta-rs skips every
        file outside them (it derives no such bounds from the source in its streamed mode), so the MERGE reads
        the files around these rows, not the day."""
        partitions = {c: pc.unique(rows[c]).to_pylist() for c in spec.partition_by}
        merger = table.merge(
            rows,
            merge_conditions.merge_condition(spec, partitions, key_ranges=merge_conditions.key_ranges(spec, rows)),
            source_alias=merge_conditions.SOURCE,
            target_alias=merge_conditions.TARGET,
            writer_properties=writer_properties(spec),
        )
        changed, assignments = merge_conditions.changed_condition(spec), merge_conditions.update_assignments(spec)
        if assignments is None:
            merger = merger.when_matched_update_all(predicate=changed)
        else:  # monotonic columns (watermarks): greatest/least, never backwards
            merger = merger.when_matched_update(updates=assignments, predicate=changed)
        return merger.when_not_matched_insert_all().execute()

    def append(self, spec: TableSpec, data: pa.Table) -> None:
        source = conform(spec, data)
        if source.num_rows == 0:
            return
        self.ensure(spec)
        with _table_lock(self.path(spec)):
            write_deltalake(self.path(spec), source, mode="append", writer_properties=writer_properties(spec))

    def read(self, spec: TableSpec, columns: list[str] | None = None) -> pa.Table:
        schema = read_schema(spec, columns)
        table = self._open(spec)
        if table is None:
            return schema.empty_table()
        return table.to_pyarrow_table(columns=columns)

    def latest(self, spec: TableSpec, column: str, by: str) -> dict[str, datetime]:
        table = self._open(spec)
        if table is None:
            return {}
        found = QueryBuilder().register("t", table).execute(merge_conditions.latest_sql("t", column, by)).read_all()
        return dict(zip(found["item"].to_pylist(), found["latest"].to_pylist(), strict=True))

    def optimize(self, spec: TableSpec) -> dict:
        """Compact, then Z-order by `spec.zorder_by` (Z-order rewrites every file, so it runs only when set)."""
        table = self._open(spec)
        if table is None:
            return {"skipped": "table does not exist"}
        options = writer_properties(spec)
        metrics = {"compact": table.optimize.compact(writer_properties=options)}
        if spec.zorder_by:
            z_order = DeltaTable(self.path(spec)).optimize.z_order
            metrics["z_order"] = z_order(list(spec.zorder_by), writer_properties=options)
        return metrics

    def vacuum(self, spec: TableSpec, retain_hours: int = 168) -> dict:
        """Delete unreferenced files older than `retain_hours`; below 168 h, time travel and long readers break."""
        table = self._open(spec)
        if table is None:
            return {"skipped": "table does not exist"}
        if retain_hours < 168:
            log.warning("vacuum %s with %d h retention: older versions become unreadable", spec.name, retain_hours)
        deleted = table.vacuum(retention_hours=retain_hours, dry_run=False, enforce_retention_duration=False)
        return {"files_deleted": len(deleted), "retain_hours": retain_hours}

    def executor(self, config: ConnectorConfig, writer: Sink | None = None) -> UnitExecutor:
        """No Spark here: the units run on this process's thread pool (`performance.workers`); the runner
        writes their rows, so `writer` is not needed."""
        from osipi_connector.executor import thread_pool

        return thread_pool(config.performance)


def _reread_apart(
    spec: TableSpec, rows: pa.Table, reread_from: datetime | None, chosen: pa.Array | None = None
) -> list[pa.Table]:
    """The `chosen` rows (all when None) as the appends to write: those before `reread_from` and those at or
    after it (the next run's lookback) in separate files, so the next run's MERGE touches only the second,
    small part. Empty parts are left out."""
    if chosen is None:
        chosen = pa.repeat(pa.scalar(True), rows.num_rows)
    if reread_from is None or spec.time_column is None:
        parts = [chosen]
    else:
        later = pc.greater_equal(
            rows[spec.time_column], pa.scalar(reread_from, rows.schema.field(spec.time_column).type)
        )
        parts = [pc.and_(chosen, pc.invert(later)), pc.and_(chosen, later)]
    out = []
    for mask in parts:
        count = pc.sum(mask).as_py() or 0
        if count == rows.num_rows:
            out.append(rows)  # no copy when every row goes to one file
        elif count:
            out.append(rows.filter(mask))
    return out


def _log_identity(path: Path) -> tuple[int, int] | None:
    """(inode, mtime) of the table's first log entry: another file means another table at the same path."""
    try:
        stat = (path / "_delta_log" / f"{0:020d}.json").stat()
    except OSError:  # no first entry (cleaned up after a checkpoint): never trust a cached state
        return None
    return stat.st_ino, stat.st_mtime_ns


def _check_existing(spec: TableSpec, table: DeltaTable) -> None:
    """An existing table must have the spec's columns and partitioning: writing a changed spec fails loudly."""
    actual = pa.schema(table.schema().to_arrow())
    problems = column_differences({f.name: f.type for f in spec.schema}, {f.name: f.type for f in actual}, "on disk")
    partitions = table.metadata().partition_columns
    if list(partitions) != list(spec.partition_by):
        problems.append(f"partitioned by {partitions} on disk, {list(spec.partition_by)} in spec")
    if problems:
        raise SchemaMismatchError(
            f"table {spec.name} at {table.table_uri} does not match its spec: {'; '.join(problems)}. "
            "Run `osipi-connector upgrade-tables --config ...` (checkpoint tables), or migrate the table / write "
            "to a new root, before running this version."
        )
