"""Any Sink with Delta's concurrent-modification errors retried a few times, each retry logged and counted.

Delta commits optimistically: two writers that touched the same files (or both created the same table) make
the later commit fail with a conflict, and nothing of it lands. Every Sink write is idempotent (MERGE by
keys, CREATE IF NOT EXISTS, OPTIMIZE), so the loser re-runs the whole operation on the new table version.
Only conflicts are retried — any other error surfaces at once — and after `attempts` tries the last conflict
surfaces unchanged. The retries are kept in `retries` so a run can report them (run metrics
`conflict_retries`): a conflict is never silent.

What a conflict looks like per engine (checked by tests/lake/test_conflict_retry.py on real Delta):
- delta-rs: `deltalake.exceptions.CommitFailedError`.
- Spark + Delta Lake through py4j: a `Py4JJavaError` whose Java exception is
  `io.delta.exceptions.ConcurrentAppendException` / `ProtocolChangedException` / ... (PySpark does not
  convert them); on Databricks the same classes live in `com.databricks.sql.transaction.tahoe`.
- Spark Connect / Databricks Connect: a PySpark exception whose error class is `DELTA_CONCURRENT_*`,
  `DELTA_PROTOCOL_CHANGED` or `DELTA_METADATA_CHANGED` (also in its message as `[DELTA_...]`).
- A CREATE race (both sessions): `DELTA_CREATE_TABLE_WITH_NON_EMPTY_LOCATION` or `TABLE_OR_VIEW_ALREADY_EXISTS`.
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

import pyarrow as pa
from deltalake.exceptions import CommitFailedError

from osipi_connector.lake.schemas import TableSpec
from osipi_connector.lake.sink import Optimized, Sink, Vacuumed, WriteResult

if TYPE_CHECKING:
    from osipi_connector.config import ConnectorConfig
    from osipi_connector.executor import UnitExecutor

log = logging.getLogger(__name__)
T = TypeVar("T")

ATTEMPTS = 5
"""Tries per operation (the first + 4 retries): two or three writers settle within that."""
BASE_DELAY = 0.5
"""Seconds before the first retry; doubled per retry, each wait jittered x0.5-1.5 so writers fall apart."""

_CONFLICT_CLASS = re.compile(
    r"DELTA_(?:CONCURRENT_\w+|PROTOCOL_CHANGED|METADATA_CHANGED|CREATE_TABLE_WITH_NON_EMPTY_LOCATION)"
    r"|TABLE_OR_VIEW_ALREADY_EXISTS"
)
"""Error classes of Delta's concurrent-modification errors, optionally with a sub-class (`.WITH_PARTITION_HINT`),
and of a CREATE race in the catalog: two writers' `CREATE TABLE IF NOT EXISTS` at once, the loser finds the
winner's table half made ("location is not empty and also not a Delta table") or just registered; re-run, the
CREATE finds the table and does nothing."""
_CONFLICT_JAVA = re.compile(
    r"^(io\.delta\.exceptions|com\.databricks\.sql\.transaction\.tahoe)\."
    r"(Concurrent\w+|ProtocolChanged|MetadataChanged)Exception$"
)


@dataclass(frozen=True)
class Retry:
    """One conflict that was retried: which operation on which table, attempt number, the conflict's name."""

    table: str
    operation: str
    attempt: int
    conflict: str


def conflict_name(exc: BaseException) -> str | None:
    """The name of Delta's concurrent-modification error in `exc` (or its causes), None for any other error."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        name = _one_conflict_name(current)
        if name:
            return name
        current = current.__cause__ or current.__context__
    return None


def _one_conflict_name(exc: BaseException) -> str | None:
    if isinstance(exc, CommitFailedError):
        return "CommitFailedError"
    java = getattr(exc, "java_exception", None)  # py4j.protocol.Py4JJavaError
    if java is not None:
        try:
            java_class = java.getClass().getName()
        except Exception:  # the JVM is gone: not something a retry fixes
            return None
        if _CONFLICT_JAVA.match(java_class):
            return java_class.rsplit(".", 1)[1]
        return None
    # pyspark.errors.PySparkException (Spark Connect): getCondition since 4.0, getErrorClass before
    condition = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
    if callable(condition):
        try:
            value = (condition() or "").split(".")[0]  # DELTA_CONCURRENT_APPEND.WITH_PARTITION_HINT
        except Exception:
            value = ""
        if _CONFLICT_CLASS.fullmatch(value):
            return value
    if type(exc).__module__.startswith("pyspark"):
        match = re.search(r"\[(" + _CONFLICT_CLASS.pattern + r")(?:\.\w+)?\]", str(exc))
        if match:
            return match.group(1)
    return None


class ConflictRetry:
    """Wraps a Sink: every table operation re-runs on a Delta conflict (see the module docstring).

    Other attributes (`spark`, `location`, `path`...) are the wrapped sink's, so code that needs the
    engine still finds it. Thread-safe: concurrent threads of one run share `retries`."""

    def __init__(
        self,
        sink: Sink,
        attempts: int = ATTEMPTS,
        base_delay: float = BASE_DELAY,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if attempts < 1:
            raise ValueError(f"attempts must be at least 1, not {attempts}")
        self.sink: Sink = sink.sink if isinstance(sink, ConflictRetry) else sink
        self.engine = self.sink.engine
        self.attempts = attempts
        self.base_delay = base_delay
        self.sleep = sleep
        self.retries: list[Retry] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)

    # --- the Sink interface ---------------------------------------------------------------------------
    def table_name(self, spec: TableSpec) -> str:
        return self.sink.table_name(spec)

    def ensure(self, spec: TableSpec) -> None:
        self._retry("ensure", spec, lambda: self.sink.ensure(spec))

    def merge(self, spec: TableSpec, data: pa.Table, reread_from: datetime | None = None) -> WriteResult:
        return self._retry("merge", spec, lambda: self.sink.merge(spec, data, reread_from=reread_from))

    def merge_dataframe(
        self,
        spec: TableSpec,
        df: Any,
        partition_values: Mapping[str, Iterable[Any]] | None = None,
        reread_from: datetime | None = None,
    ) -> WriteResult:
        """The Spark sink's MERGE from executors' rows: re-running it recomputes the (idempotent) source."""
        merge = getattr(self.sink, "merge_dataframe", None)  # the Spark sink's alone, outside the Sink protocol
        if merge is None:
            raise TypeError(f"the {self.engine} sink cannot MERGE a Spark DataFrame")
        return self._retry("merge", spec, lambda: merge(spec, df, partition_values, reread_from=reread_from))

    def append(self, spec: TableSpec, data: pa.Table) -> None:
        self._retry("append", spec, lambda: self.sink.append(spec, data))

    def read(self, spec: TableSpec, columns: list[str] | None = None) -> pa.Table:
        return self._retry("read", spec, lambda: self.sink.read(spec, columns))  # Spark's read creates the table

    def latest(self, spec: TableSpec, column: str, by: str) -> dict[str, datetime]:
        return self._retry("read", spec, lambda: self.sink.latest(spec, column, by))

    def optimize(self, spec: TableSpec) -> Optimized | dict:
        return self._retry("optimize", spec, lambda: self.sink.optimize(spec))

    def vacuum(self, spec: TableSpec, retain_hours: int = 168) -> Vacuumed | dict:
        return self._retry("vacuum", spec, lambda: self.sink.vacuum(spec, retain_hours=retain_hours))

    def executor(self, config: ConnectorConfig, writer: Sink | None = None) -> UnitExecutor:
        """The wrapped sink's executor, writing through this wrapper: its MERGEs are retried too."""
        return self.sink.executor(config, self if writer is None else writer)

    def retrying(self, operation: str, spec: TableSpec, call: Callable[[], T]) -> T:
        """An idempotent table operation outside the Sink interface (lake/range_delete.py's DELETE), retried
        and counted like the others."""
        return self._retry(operation, spec, call)

    # --- retrying -------------------------------------------------------------------------------------
    def _retry(self, operation: str, spec: TableSpec, call: Callable[[], T]) -> T:
        for attempt in range(1, self.attempts + 1):
            try:
                return call()
            except Exception as exc:
                conflict = conflict_name(exc)
                if conflict is None or attempt == self.attempts:
                    if conflict is not None:
                        log.error(
                            "%s of %s: still conflicting after %d attempts (%s)",
                            operation,
                            spec.name,
                            attempt,
                            conflict,
                        )
                    raise
                delay = self.base_delay * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
                with self._lock:
                    self.retries.append(Retry(spec.name, operation, attempt, conflict))
                log.warning(
                    "%s of %s lost a commit race to a concurrent writer (%s, attempt %d of %d): retrying in %.1f s",
                    operation,
                    spec.name,
                    conflict,
                    attempt,
                    self.attempts,
                    delay,
                )
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover
