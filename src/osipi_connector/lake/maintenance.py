"""Weekly table care for any Sink: compact small files, Z-order, then vacuum what is no longer referenced.

Incremental runs write many small files (one per partition per run); compaction keeps reads fast and Z-order on
(tag_webid, timestamp) lets one tag's history skip most files. Runs on delta-rs locally and on Spark/Unity
Catalog through the same Sink methods, and reports the same figures for both (`Optimized`, `Vacuumed`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass

from osipi_connector.lake.conflict_retry import ConflictRetry
from osipi_connector.lake.schemas import ALL_TABLES, TableSpec
from osipi_connector.lake.sink import Optimized, Sink, Vacuumed

log = logging.getLogger(__name__)


@dataclass
class TableMaintenance:
    """What happened to one table; `error` is set (and the other tables still run) when a step failed."""

    table: str
    optimized: Optimized | None = None
    vacuumed: Vacuumed | None = None
    skipped: str | None = None  # why nothing was done (the table does not exist)
    seconds: float = 0.0
    error: str | None = None
    conflict_retries: int = 0  # OPTIMIZE re-run after a concurrent run's commit touched the same files

    def summary(self) -> str:
        """One line for the terminal or a job log."""
        if self.error:
            return f"{self.table}: FAILED {self.error}"
        if self.skipped or self.optimized is None or self.vacuumed is None:
            return f"{self.table}: skipped ({self.skipped})"
        opt, zorder = self.optimized, " + z-order" if self.optimized.zorder_by else ""
        return (
            f"{self.table}: compacted {opt.files_removed} -> {opt.files_added} files{zorder}, "
            f"vacuumed {self.vacuumed.files_deleted} files, {self.seconds:.2f}s"
        )


def optimized(spec: TableSpec, metrics: Optimized | dict) -> Optimized:
    """`Optimized` from either sink: SparkSink answers it; DeltaSink answers delta-rs' metrics, a compaction
    then (when the spec Z-orders) a Z-order that rewrites every file, the compaction's output included."""
    if isinstance(metrics, Optimized):
        return metrics
    compact = metrics["compact"]
    z_order = metrics.get("z_order")
    if z_order is None:
        return Optimized(compact["numFilesRemoved"], compact["numFilesAdded"])
    removed = compact["numFilesRemoved"] + z_order["numFilesRemoved"] - compact["numFilesAdded"]
    return Optimized(removed, z_order["numFilesAdded"], tuple(spec.zorder_by))


def vacuumed(metrics: Vacuumed | dict) -> Vacuumed:
    if isinstance(metrics, Vacuumed):
        return metrics
    return Vacuumed(metrics["files_deleted"], metrics["retain_hours"])


def maintain(sink: Sink, specs: Iterable[TableSpec] = ALL_TABLES, retain_hours: int = 168) -> list[TableMaintenance]:
    """Optimize (+ Z-order where the spec says) and vacuum each table; one table's failure does not stop the rest.

    Safe beside a run: a step that loses a commit race to the run's MERGE is re-run (lake/conflict_retry.py)."""
    sink = ConflictRetry(sink)
    results = []
    for spec in specs:
        retried = len(sink.retries)
        result = TableMaintenance(table=sink.table_name(spec))
        started = time.perf_counter()
        try:
            metrics = sink.optimize(spec)
            if isinstance(metrics, dict) and "skipped" in metrics:
                result.skipped = metrics["skipped"]
            else:
                result.optimized = optimized(spec, metrics)
                result.vacuumed = vacuumed(sink.vacuum(spec, retain_hours=retain_hours))
        except Exception as exc:  # maintenance of the other tables is still worth doing
            log.exception("maintenance of %s failed", spec.name)
            result.error = f"{type(exc).__name__}: {exc}"
        result.seconds = round(time.perf_counter() - started, 3)
        result.conflict_retries = len(sink.retries) - retried
        results.append(result)
    return results
