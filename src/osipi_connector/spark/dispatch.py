"""The runner's switch to distributed extraction; imports no pyspark, so runs without Spark never need it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from osipi_connector.config import ConfigError, PerformanceConfig
from osipi_connector.extract.timeseries import FetchResult
from osipi_connector.lake.schemas import TIMESERIES
from osipi_connector.plan import WorkUnit


def enabled(performance: PerformanceConfig, sink: Any) -> bool:
    """`performance.distributed`: true/false as set; auto = on with a Spark sink on a classic session only.

    Databricks documents that serverless compute supports only Spark Connect APIs and that its UDFs cannot
    reach the internet, so a Spark Connect session (serverless, Databricks Connect) keeps the driver's thread
    pool; this replaces an undocumented IS_SERVERLESS environment variable. Elsewhere (e.g. a standard access
    cluster whose executors cannot reach PI) set `distributed: false`."""
    spark = getattr(sink, "engine", None) == "spark"
    if performance.distributed is True and not spark:
        raise ConfigError(
            "performance.distributed: true needs the Spark sink (a Databricks job); set it to auto or false here"
        )
    if performance.distributed != "auto":
        return bool(performance.distributed)
    return spark and not spark_connect(sink.spark)


def spark_connect(session: Any) -> bool:
    """True for a Spark Connect session (serverless, standard access mode, Databricks Connect)."""
    return type(session).__module__.startswith("pyspark.sql.connect.")


def fetch_and_merge(run: Any, units: Sequence[WorkUnit]) -> FetchResult:
    """The runner's (`runner._Run`) timeseries units fetched on Spark executors and MERGEd from there.

    Returns the per-tag outcomes in the local path's shape (`FetchResult`, its table empty: the rows are
    already in Delta) and counts the merged rows in the run's result, only once the MERGE committed; the
    runner then writes the watermarks as for the thread pool."""
    from osipi_connector.secrets import resolve_credentials
    from osipi_connector.spark.distributed import UnitsJob
    from osipi_connector.spark.distributed import fetch_and_merge as merge_units

    config = run.config
    job = UnitsJob(
        settings=config.client_settings(),
        credentials=resolve_credentials(config),
        units=tuple(units),
        max_count=config.extraction.max_count_per_tag,
        max_values=config.performance.max_values_per_request,
        run_id=run.run_id,
        ingested_at=run.ingested_at,
    )
    fetched = merge_units(run.sink, job)
    merged = sum(fetched.rows.values())
    run.result.rows[TIMESERIES.name] = run.result.rows.get(TIMESERIES.name, 0) + merged
    run.connector._report("timeseries", len(units), len(units), merged)
    return fetched
