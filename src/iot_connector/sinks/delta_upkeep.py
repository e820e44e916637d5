"""Keeps the agent's local Delta table small in files and log while it is written: compaction and vacuum.

Why: the sink commits up to a few times a second, one Parquet file and one log entry each, and a delta-rs
commit gets slower with every live file and every entry in `_delta_log` (on a local disk delta-rs lists the
whole folder after each commit): ~7 µs per log entry and ~6 µs per live file per commit here
(benchmarks/edge_delta_commits.py). An agent left running would slow itself and its readers down.

What runs, on a thread of its own beside the appends, one step at a time:
- every `compact_every_commits` commits of this sink: the small files are compacted (delta-rs optimize,
  files under SMALL_FILE_BYTES: bounded, so one growing file is not rewritten for ever);
- every FULL_EVERY_S: everything under the table's target file size (delta-rs: 100 MB) is compacted, then
  files removed longer ago than `deleted_file_retention_hours` are vacuumed.
- every CHECKPOINT_EVERY commits (after the above): a checkpoint, expired log entries deleted, and a fresh
  table object for the sink (`fresh`). delta-rs would write the checkpoint inside the 100th commit,
  stalling it and every record waiting behind it (a p99 spike of 20-100 ms).
A compaction commits with dataChange=false, which a blind append never conflicts with. The table is created
with a log retention of `log_retention_minutes` (`table_properties`): with Delta's default of 30 days the log of a few commits a second would grow
to millions of entries. A failed step is logged and counted (`iot_delta_maintenance_total{action,
result="failed"}`) and tried again at the next trigger; it never fails a batch, whose rows are committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from deltalake import DeltaTable

from iot_connector.config.models import DeltaSinkSettings
from iot_connector.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

SMALL_FILE_BYTES = 16 << 20  # the frequent compaction's target: what it rewrites at most, each time
FULL_EVERY_S = 3600.0  # full compaction and vacuum
CHECKPOINT_EVERY = 100  # commits of the sink; delta-rs' own post-commit checkpoint (same cadence) is off


def _checkpointed(table: DeltaTable) -> DeltaTable:
    """Checkpoint the table at its version and drop expired log entries. The object, opened at the start of
    the step, goes to the sink: it loaded from the previous checkpoint (cheap), and one held open slows with
    every commit it has seen."""
    table.create_checkpoint()
    table.cleanup_metadata()
    return table


def table_properties(settings: DeltaSinkSettings) -> dict[str, str]:
    """Set when the agent creates the table (tables created otherwise keep their own)."""
    return {
        "delta.logRetentionDuration": f"interval {settings.log_retention_minutes} minutes",
        "delta.deletedFileRetentionDuration": f"interval {settings.deleted_file_retention_hours} hours",
    }


class TableUpkeep:
    def __init__(self, path: Path, settings: DeltaSinkSettings, metrics: Metrics | None = None):
        self.path = path
        self.compact_every = settings.compact_every_commits  # 0: never
        self.retention_hours = settings.deleted_file_retention_hours
        self.metrics = metrics
        self.fresh: DeltaTable | None = None  # opened after the last checkpoint, for the sink to take
        self._since_compact = self._since_checkpoint = 0  # commits of the sink
        self._last_full = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._step_commits = False  # the step in progress compacts or vacuums (commits to the table)

    def committed(self) -> None:
        """Called after each commit of the sink; starts a step when one is due and none runs."""
        self._since_compact += 1
        self._since_checkpoint += 1
        if self._task is not None and not self._task.done():
            return  # due steps wait for the next commit after this one
        compact = bool(self.compact_every) and self._since_compact >= self.compact_every
        checkpoint = self._since_checkpoint >= CHECKPOINT_EVERY
        if not (compact or checkpoint):
            return
        full = compact and time.monotonic() - self._last_full >= FULL_EVERY_S
        if compact:
            self._since_compact = 0
        if full:
            self._last_full = time.monotonic()
        self._since_checkpoint = 0  # every step ends with one
        self._step_commits = compact or full
        self._task = asyncio.create_task(asyncio.to_thread(self._step, compact, full), name="delta-upkeep")

    @property
    def committing(self) -> bool:
        """A compaction or vacuum is running: it will commit, and must find a free version to do so. delta-rs
        tries 15 versions, then gives up: against appends 5 ms apart a third of the compactions failed, against
        back-to-back ones up to half (none at 10 ms). The sink spaces its commits while this is true."""
        return self._step_commits and self._task is not None and not self._task.done()

    async def close(self) -> None:
        """Wait for the step in progress (a thread cannot be interrupted; a compaction takes well under a
        minute even at the full tier)."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            self._task = None

    def _step(self, compact: bool, full: bool) -> None:
        """One open of the table for the whole step: delta-rs brings the object up to date after its own
        compaction, so the vacuum and the checkpoint see it."""
        path = str(self.path)
        opened: list[DeltaTable] = []

        def table() -> DeltaTable:  # opened by the first action that needs it; a failed open fails that action
            if not opened:
                opened.append(DeltaTable(path))
            return opened[0]

        if compact:
            target = None if full else SMALL_FILE_BYTES
            done = self._run("compact", lambda: table().optimize.compact(target_size=target))
            if done is not None:
                level = logging.INFO if full else logging.DEBUG
                removed, added = done["numFilesRemoved"], done["numFilesAdded"]
                log.log(level, "Delta %s: compacted %d files into %d", path, removed, added)
        if full:
            hours = self.retention_hours
            deleted = self._run(
                "vacuum",
                lambda: table().vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False),
            )
            if deleted is not None:
                log.info("Delta %s: vacuumed %d files removed over %d h ago", path, len(deleted), hours)
        checkpointed = self._run("checkpoint", lambda: _checkpointed(table()))
        if checkpointed is not None:
            self.fresh = checkpointed

    def _run(self, action: str, call: Callable[[], T]) -> T | None:
        try:
            result = call()
        except Exception as exc:  # whatever it is (delta-rs, the disk, pyarrow): counted, the appends go on
            log.warning("Delta %s: %s failed, tried again later: %s", self.path, action, exc)
            self._count(action, "failed")
            return None
        self._count(action, "ok")
        return result

    def _count(self, action: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.delta_maintenance.labels(action=action, result=result).inc()
