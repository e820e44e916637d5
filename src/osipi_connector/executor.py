"""Where a run's timeseries units are fetched: the interface the runner drives, and the local thread pool.

The runner builds a `Plan` once and gives its units to the executor its sink chose (`Sink.executor`): this
module's thread pool for delta-rs (and for Spark with `performance.distributed: false`), Spark's executors
for a `SparkSink` (`spark/dispatch.py`). It never asks which one it has: both yield `Fetched` batches in plan
order, with the rows for the runner to commit or, when the executor MERGEd them itself, only their count.
Either way the runner writes the watermarks after the rows are committed.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from osipi_connector.config import ConfigError, PerformanceConfig
from osipi_connector.extract.timeseries import FetchResult, fetch_recorded
from osipi_connector.lake.schemas import TIMESERIES
from osipi_connector.piwebapi.client import PIClient
from osipi_connector.plan import WorkUnit


@dataclass(frozen=True)
class FetchJob:
    """What every unit of one run is fetched with, wherever it runs."""

    max_count: int
    max_values: int | None
    run_id: str
    ingested_at: datetime


@dataclass
class Fetched:
    """Units done: `result` holds their rows to commit and per-tag outcomes; `committed` counts the rows the
    executor already MERGEd itself (then `result.table` is empty)."""

    units: tuple[WorkUnit, ...]
    result: FetchResult
    committed: int = 0

    @property
    def slot(self) -> int | None:
        """The units' grid slot when they share one (one slot per commit, see runner)."""
        slots = {unit.slot for unit in self.units}
        return slots.pop() if len(slots) == 1 else None


class UnitExecutor(Protocol):
    def fetch(self, units: Sequence[WorkUnit], job: FetchJob, client: PIClient) -> Iterator[Fetched]:
        """Every unit exactly once, in plan order; a unit that fails yields its tags in `result.failed`.
        `client` is the driver's; executors elsewhere build their own from the run's settings."""
        ...


class ThreadPoolUnits:
    """Units fetched by `workers` threads of this process with the run's client, one `Fetched` per unit."""

    def __init__(self, workers: int) -> None:
        self.workers = workers

    def fetch(self, units: Sequence[WorkUnit], job: FetchJob, client: PIClient) -> Iterator[Fetched]:
        def work(unit: WorkUnit) -> FetchResult:
            return fetch_recorded(
                client,
                list(unit.windows),
                max_count=job.max_count,
                max_values=job.max_values,
                run_id=job.run_id,
                ingested_at=job.ingested_at,
            )

        with ThreadPoolExecutor(self.workers, thread_name_prefix="pi-fetch") as pool:
            for unit, future in _bounded(pool, work, list(units), self.workers + 2):
                try:
                    fetched = future.result()
                except Exception as exc:  # a bug or an unexpected answer: the unit's tags fail, the rest go on
                    fetched = FetchResult(TIMESERIES.schema.empty_table())
                    fetched.failed = {w: f"{type(exc).__name__}: {exc}" for w in unit.webids}
                yield Fetched((unit,), fetched)


def thread_pool(performance: PerformanceConfig) -> ThreadPoolUnits:
    """The executor of a sink without Spark; `distributed: true` asks for Spark, so here it is an error."""
    if performance.distributed is True:
        raise ConfigError(
            "performance.distributed: true needs the Spark sink (a Databricks job); set it to auto or false here"
        )
    return ThreadPoolUnits(performance.workers)


def _bounded(pool: ThreadPoolExecutor, fn: Callable[[WorkUnit], Any], units: list[WorkUnit], limit: int) -> Iterator:
    """(unit, future) in plan order, with at most `limit` units submitted and not yet yielded: memory stays
    flat however many units. Plan order (not completion order) keeps each commit's tags a contiguous WebID
    range, so the Delta files of successive commits do not overlap and the sink can append (lake/new_rows)."""
    queue = iter(units)
    running: deque[tuple[WorkUnit, Future]] = deque()
    for unit in queue:
        running.append((unit, pool.submit(fn, unit)))
        if len(running) >= limit:
            break
    while running:
        unit, future = running.popleft()
        wait([future])
        yield unit, future
        following = next(queue, None)
        if following is not None:
            running.append((following, pool.submit(fn, following)))
