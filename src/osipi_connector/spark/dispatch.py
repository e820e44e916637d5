"""A SparkSink's unit executor: Spark's executors when distributed extraction is on, else the local thread pool.
Imports no pyspark itself (distributed.py does, on first use)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from osipi_connector.config import ConnectorConfig, PerformanceConfig
from osipi_connector.executor import Fetched, FetchJob, ThreadPoolUnits, UnitExecutor, thread_pool
from osipi_connector.lake.sink import Location, Sink, WriteResult
from osipi_connector.piwebapi.client import PIClient
from osipi_connector.piwebapi.settings import ClientSettings, Credentials
from osipi_connector.plan import WorkUnit

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from pyspark.sql import DataFrame, SparkSession

    from osipi_connector.lake.schemas import TableSpec


class SparkWriter(Sink, Protocol):
    """A SparkSink, or a wrapper of one (lake/conflict_retry.ConflictRetry): what the distributed fetch writes
    its rows through."""

    spark: SparkSession
    location: Location

    def merge_dataframe(
        self,
        spec: TableSpec,
        df: DataFrame,
        partition_values: Mapping[str, Iterable[object]] | None = None,
        reread_from: datetime | None = None,
    ) -> WriteResult: ...


def enabled(performance: PerformanceConfig, sink: Any) -> bool:
    """`performance.distributed`: true/false as set; auto = on with a Spark sink on a classic session only.

    Databricks documents that serverless compute supports only Spark Connect APIs and that its UDFs cannot
    reach the internet, so a Spark Connect session (serverless, Databricks Connect) keeps the driver's thread
    pool; this replaces an undocumented IS_SERVERLESS environment variable. Elsewhere (e.g. a standard access
    cluster whose executors cannot reach PI) set `distributed: false`."""
    spark = getattr(sink, "engine", None) == "spark"
    if not spark:
        thread_pool(performance)  # the one place that refuses `distributed: true` without Spark
        return False
    if performance.distributed != "auto":
        return bool(performance.distributed)
    return spark and not spark_connect(sink.spark)


def spark_connect(session: Any) -> bool:
    """True for a Spark Connect session (serverless, standard access mode, Databricks Connect)."""
    return type(session).__module__.startswith("pyspark.sql.connect.")


def executor(sink: SparkWriter, config: ConnectorConfig) -> UnitExecutor:
    """Where `sink`'s runs fetch their timeseries units (`performance.distributed`, see `enabled`)."""
    if not enabled(config.performance, sink):
        return ThreadPoolUnits(config.performance.workers)
    from osipi_connector.secrets import resolve_credentials

    return SparkUnits(sink, config.client_settings(), resolve_credentials(config), config.extraction.lookback)


class SparkUnits:
    """Every unit fetched on the Spark executors and MERGEd from there by the sink (spark/distributed.py):
    one `Fetched` for all units, its table empty and `committed` the rows merged; the runner then writes the
    watermarks as for the thread pool.

    `lookback` places the rows the next incremental run re-reads (from the run's end − lookback) in files of
    their own, as the runner's own commits do (`Sink.merge`'s `reread_from`); every unit's windows end at
    the run's end."""

    def __init__(
        self, sink: SparkWriter, settings: ClientSettings, credentials: Credentials, lookback: timedelta | None = None
    ) -> None:
        self.sink, self.settings, self.credentials, self.lookback = sink, settings, credentials, lookback

    def fetch(self, units: Sequence[WorkUnit], job: FetchJob, client: PIClient) -> Iterator[Fetched]:
        from osipi_connector.spark.distributed import UnitsJob, fetch_and_merge

        if not units:
            return
        units_job = UnitsJob(
            settings=self.settings,
            credentials=self.credentials,
            units=tuple(units),
            max_count=job.max_count,
            max_values=job.max_values,
            run_id=job.run_id,
            ingested_at=job.ingested_at,
            reread_from=None if self.lookback is None else max(w.end for u in units for w in u.windows) - self.lookback,
        )
        fetched = fetch_and_merge(self.sink, units_job)
        yield Fetched(tuple(units), fetched, committed=sum(fetched.rows.values()))
