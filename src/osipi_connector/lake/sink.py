"""The one interface both sinks implement (delta-rs on disk, Spark/Unity Catalog on Databricks).

CONTRACT stub: the extractor only ever calls these methods, so a run never needs to know which sink it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

import pyarrow as pa

from osipi_connector.lake.schemas import TableSpec

if TYPE_CHECKING:
    from osipi_connector.config import ConnectorConfig
    from osipi_connector.executor import UnitExecutor


@dataclass(frozen=True)
class Location:
    """Where tables live: `catalog.schema.table` on Databricks, `<root>/<catalog>/<schema>/<table>` locally."""

    catalog: str = "main"
    schema: str = "bronze"
    checkpoint_schema: str = "checkpoints"

    def schema_for(self, spec: TableSpec) -> str:
        return self.checkpoint_schema if spec.layer == "checkpoints" else self.schema


@dataclass(frozen=True)
class WriteResult:
    inserted: int
    updated: int


@dataclass(frozen=True)
class Optimized:
    """What OPTIMIZE did, in the same figures on every engine: `files_removed` data files were rewritten into
    `files_added` (both 0 when the table was already compact); `zorder_by` when the rewrite Z-ordered."""

    files_removed: int
    files_added: int
    zorder_by: tuple[str, ...] = ()


@dataclass(frozen=True)
class Vacuumed:
    """Files VACUUM deleted (unreferenced and older than `retain_hours`)."""

    files_deleted: int
    retain_hours: int


class Sink(Protocol):
    engine: str  # "delta-rs" | "spark": recorded in the run-metrics row

    def table_name(self, spec: TableSpec) -> str:
        """What a user types to query the table (a path locally, a three-part name on Databricks)."""
        ...

    def ensure(self, spec: TableSpec) -> None:
        """Create the table with the spec's schema and partitioning if missing (idempotent)."""
        ...

    def merge(self, spec: TableSpec, data: pa.Table, reread_from: datetime | None = None) -> WriteResult:
        """Upsert by `spec.keys`: re-writing the same rows changes nothing. `data` must have `spec.schema` and no
        duplicate keys (the caller de-duplicates).

        `reread_from` is a layout hint, never a promise about the data: rows whose `spec.time_column` is at or
        after it will be read again by the next incremental run (its lookback). A sink may keep them in files
        of their own, so that the next run's MERGE rewrites those files and not the rest of the day."""
        ...

    def append(self, spec: TableSpec, data: pa.Table) -> None:
        """Append (run metrics only: every other table is merged)."""
        ...

    def read(self, spec: TableSpec, columns: list[str] | None = None) -> pa.Table:
        """Whole table as Arrow (small tables: watermarks, run metrics); empty table with the schema if missing."""
        ...

    def latest(self, spec: TableSpec, column: str, by: str) -> dict[str, datetime]:
        """{value of `by`: max of `column`} computed by the engine (any table size); {} if the table is missing.
        The runner's safe point for a watermark found past the server's clock: the data actually committed."""
        ...

    def optimize(self, spec: TableSpec) -> Optimized | dict:
        """Compact small files and Z-order by `spec.zorder_by` (when set). SparkSink answers `Optimized`;
        DeltaSink still answers delta-rs' metrics dict, which `maintenance.maintain` turns into `Optimized`."""
        ...

    def vacuum(self, spec: TableSpec, retain_hours: int = 168) -> Vacuumed | dict:
        """Remove files no longer referenced and older than `retain_hours` (DeltaSink: a dict, as above)."""
        ...

    def executor(self, config: ConnectorConfig, writer: Sink | None = None) -> UnitExecutor:
        """Where a run writing to this sink fetches its timeseries units (executor.py): the engine is chosen
        once, with the sink, so the runner never asks which one it has. An executor that writes rows itself
        writes through `writer` (a wrapper such as lake/conflict_retry.ConflictRetry passes itself), else
        through this sink."""
        ...
