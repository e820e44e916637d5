"""Weekly table care for any Sink: compact small files, Z-order, then vacuum what is no longer referenced.

Incremental runs write many small files (one per partition per run); compaction keeps reads fast and Z-order on
(tag_webid, timestamp) lets one tag's history skip most files. Runs on delta-rs locally and on Spark/Unity
Catalog through the same Sink methods.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from osipi_connector.lake.conflict_retry import ConflictRetry
from osipi_connector.lake.schemas import ALL_TABLES, TableSpec
from osipi_connector.lake.sink import Sink

log = logging.getLogger(__name__)


@dataclass
class TableMaintenance:
    """What happened to one table; `error` is set (and the other tables still run) when a step failed."""

    table: str
    optimize: dict = field(default_factory=dict)
    vacuum: dict = field(default_factory=dict)
    seconds: float = 0.0
    error: str | None = None
    conflict_retries: int = 0  # OPTIMIZE re-run after a concurrent run's commit touched the same files


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
            result.optimize = sink.optimize(spec)
            result.vacuum = sink.vacuum(spec, retain_hours=retain_hours)
        except Exception as exc:  # maintenance of the other tables is still worth doing
            log.exception("maintenance of %s failed", spec.name)
            result.error = f"{type(exc).__name__}: {exc}"
        result.seconds = round(time.perf_counter() - started, 3)
        result.conflict_retries = len(sink.retries) - retried
        results.append(result)
    return results
