"""Keeps the agent's local Delta table small in files and log while it is written: compaction and vacuum.

Why: the sink commits up to a few times a second, one Parquet file and one log entry each, and a delta-rs
commit gets slower with every live file and every entry in `_delta_log` (on a local disk delta-rs lists the
whole folder after each commit): ~7 µs per log entry and ~10 µs per file per commit here
(benchmarks/edge_delta_commits.py). An agent left running would slow itself and its readers down.

What runs, on a thread of its own beside the appends, one step at a time:
- every `compact_every_commits` commits of this sink: the small files are compacted (delta-rs optimize,
  files under SMALL_FILE_BYTES: bounded, so one growing file is not rewritten for ever);
- every FULL_EVERY_S: everything under the table's target file size (delta-rs: 100 MB) is compacted, then
  files removed longer ago than `deleted_file_retention_hours` are vacuumed.
A compaction commits with dataChange=false, which a blind append never conflicts with. The table is created
with a log retention of `log_retention_minutes` (`table_properties`; delta-rs deletes expired entries at each
checkpoint, every 100 commits): with Delta's default of 30 days the log of a few commits a second would grow
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
from deltalake.exceptions import DeltaError

from iot_connector.config.models import DeltaSinkSettings
from iot_connector.metrics import Metrics

log = logging.getLogger(__name__)
T = TypeVar("T")

SMALL_FILE_BYTES = 16 << 20  # the frequent compaction's target: what it rewrites at most, each time
FULL_EVERY_S = 3600.0  # full compaction and vacuum


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
        self._commits = 0  # since the last compaction started
        self._last_full = time.monotonic()
        self._task: asyncio.Task[None] | None = None

    def committed(self) -> None:
        """Called after each commit of the sink; starts a step when one is due and none runs."""
        if not self.compact_every:
            return
        self._commits += 1
        if self._commits < self.compact_every or (self._task is not None and not self._task.done()):
            return
        self._commits = 0
        full = time.monotonic() - self._last_full >= FULL_EVERY_S
        if full:
            self._last_full = time.monotonic()
        self._task = asyncio.create_task(asyncio.to_thread(self._step, full), name="delta-upkeep")

    async def close(self) -> None:
        """Wait for the step in progress (a thread cannot be interrupted; a compaction takes well under a
        minute even at the full tier)."""
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
            self._task = None

    def _step(self, full: bool) -> None:
        path = str(self.path)
        target = None if full else SMALL_FILE_BYTES
        done = self._run("compact", lambda: DeltaTable(path).optimize.compact(target_size=target))
        if done is not None:
            level = logging.INFO if full else logging.DEBUG
            log.log(level, "Delta %s: compacted %d files into %d", path, done["numFilesRemoved"], done["numFilesAdded"])
        if full:
            hours = self.retention_hours
            deleted = self._run(
                "vacuum",
                lambda: DeltaTable(path).vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False),
            )
            if deleted is not None:
                log.info("Delta %s: vacuumed %d files removed over %d h ago", path, len(deleted), hours)

    def _run(self, action: str, call: Callable[[], T]) -> T | None:
        try:
            result = call()
        except (OSError, DeltaError) as exc:
            log.warning("Delta %s: %s failed, tried again later: %s", self.path, action, exc)
            self._count(action, "failed")
            return None
        self._count(action, "ok")
        return result

    def _count(self, action: str, result: str) -> None:
        if self.metrics is not None:
            self.metrics.delta_maintenance.labels(action=action, result=result).inc()
