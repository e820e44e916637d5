"""Distributed extraction: the runner's timeseries work units fetched on Spark executors and MERGEd as a
DataFrame, never collected to the driver.

How: a Python Data Source made for one run (`units_dataframe`) has one partition per work unit
(`plan.plan_units`); an executor fetches it with the local extractor's own code (`fetch_recorded`), so both
engines read the same rows. A unit never fails its Spark task over a PI error: beside its data rows it emits
one OUTCOME row per tag (`_tag_rows` rows read, `_requests`, `_error` = why the tag failed, else null).

Why materialise: the fetched rows are written once to a staging Delta table (`<catalog>.<checkpoint
schema>.pi_fetch_<id>`, dropped after the MERGE), so the outcomes the driver collects (one small row per tag
and unit) describe exactly the rows the MERGE reads. Without it the MERGE and the outcome query would each
fetch from PI, and a tag that failed in one fetch only could get its watermark advanced over rows that never
landed. A table, not `localCheckpoint`: that keeps the rows in executor caches, which Databricks calls
unreliable when autoscaling removes executors (the job would then fail instead of finishing).

Secrets: the run's job (client settings, credentials as pydantic `SecretStr`, the units) is a class attribute
of a Data Source class built for this run; cloudpickle ships that class by value to the Python workers, so
credentials are in no read option, plan, log line or repr.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
from pyspark.sql.types import StructType

from osipi_connector.extract.timeseries import FetchResult, fetch_recorded
from osipi_connector.lake import spark_sql
from osipi_connector.lake.schemas import TIMESERIES, WATERMARKS
from osipi_connector.lake.spark_schema import spark_schema
from osipi_connector.piwebapi.client import PIWebAPIClient
from osipi_connector.piwebapi.settings import ClientSettings, Credentials
from osipi_connector.plan import WorkUnit
from osipi_connector.spark.datasource import UnitPartition, unit_of

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from osipi_connector.spark.dispatch import SparkWriter

log = logging.getLogger(__name__)

# Outcome columns appended to the timeseries columns; a data row has `_tag_rows` null, an outcome row not.
OUTCOMES = pa.schema([("_tag_rows", pa.int32()), ("_requests", pa.int32()), ("_error", pa.string())])
ROWS = pa.schema([f.with_nullable(True) for f in TIMESERIES.schema] + list(OUTCOMES))  # outcome rows: data null


@dataclass(frozen=True)
class UnitsJob:
    """Everything an executor needs for the run's units; pickled into the workers, never logged."""

    settings: ClientSettings
    credentials: Credentials
    units: tuple[WorkUnit, ...]
    max_count: int
    max_values: int | None
    run_id: str
    ingested_at: datetime
    reread_from: datetime | None = None  # the next run's lookback start: `Sink.merge`'s layout hint

    def __repr__(self) -> str:  # a plan or a traceback may print it: neither secrets nor 10,000 windows
        return f"UnitsJob(url={self.settings.url!r}, units={len(self.units)}, run_id={self.run_id!r})"

    def partition_dates(self) -> list[date]:
        """Every date a fetched timestamp can have: the MERGE prunes the target to these partitions."""
        windows = [w for unit in self.units for w in unit.windows]
        if not windows:
            return []
        first, last = min(w.start for w in windows).date(), max(w.end for w in windows).date()
        return [first + timedelta(days=d) for d in range((last - first).days + 1)]


class UnitsReader(DataSourceReader):
    def __init__(self, job: UnitsJob) -> None:
        self.job = job

    def partitions(self) -> list[UnitPartition]:
        return [UnitPartition(unit.windows) for unit in self.job.units]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        """Runs on an executor: the unit's rows, then one outcome row per tag of the unit."""
        partition = unit_of(partition)
        job = self.job
        try:
            with PIWebAPIClient(job.settings, job.credentials) as client:
                fetched = fetch_recorded(
                    client,
                    list(partition.windows),
                    max_count=job.max_count,
                    max_values=job.max_values,
                    run_id=job.run_id,
                    ingested_at=job.ingested_at,
                )
        except Exception as exc:  # a bug or an unexpected answer: this unit's tags fail, the run goes on
            fetched = FetchResult(TIMESERIES.schema.empty_table())
            fetched.failed = {w.webid: f"{type(exc).__name__}: {exc}" for w in partition.windows}
        yield from _in_row_schema(dict(zip(fetched.table.column_names, fetched.table.columns))).to_batches()
        yield from _outcome_rows(partition, fetched).to_batches()


def _outcome_rows(partition: UnitPartition, fetched: FetchResult) -> pa.Table:
    """One row per tag; the unit's request count goes to its first tag, so the sum over rows is the run's."""
    webids = [w.webid for w in partition.windows]
    return _in_row_schema(
        {
            "tag_webid": pa.array(webids, pa.string()),
            "_tag_rows": pa.array([fetched.rows.get(w, 0) for w in webids], pa.int32()),
            "_requests": pa.array([fetched.requests if i == 0 else 0 for i in range(len(webids))], pa.int32()),
            "_error": pa.array([fetched.failed.get(w) for w in webids], pa.string()),
        }
    )


def _in_row_schema(columns: dict[str, pa.Array | pa.ChunkedArray]) -> pa.Table:
    """`columns` (equal lengths) in the reader's row schema; the columns not given are null."""
    n = len(next(iter(columns.values())))
    return pa.Table.from_arrays(
        [columns[f.name].cast(f.type) if f.name in columns else pa.nulls(n, f.type) for f in ROWS], schema=ROWS
    )


class UnitsDataSource(DataSource):
    """Base of the per-run source classes made by `units_dataframe`; `JOB` is set on each subclass."""

    JOB: ClassVar[UnitsJob]

    def schema(self) -> StructType:
        return spark_schema(ROWS)

    def reader(self, schema: StructType) -> UnitsReader:
        return UnitsReader(self.JOB)


def units_dataframe(spark: Any, job: UnitsJob) -> DataFrame:
    """The run's rows and outcomes as one lazy DataFrame (one partition per unit). The source's format name
    is unique to the run, so concurrent runs in one session never read each other's units."""
    format_name = f"pi_web_api_units_{uuid.uuid4().hex[:12]}"

    def name(cls: type) -> str:
        return format_name

    # Defined here, not at module level: cloudpickle then ships the class (with JOB) by value to the workers.
    source = type("RunUnitsDataSource", (UnitsDataSource,), {"JOB": job, "name": classmethod(name)})
    spark.dataSource.register(source)
    return spark.read.format(format_name).load()


@dataclass
class Extracted:
    """What the driver learns from a distributed fetch: the MERGE's source and the per-tag outcomes."""

    data: DataFrame
    failed: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    requests: int = 0

    @property
    def row_count(self) -> int:
        return sum(self.rows.values())


@contextmanager
def extract(spark: Any, job: UnitsJob, staging: str) -> Iterator[Extracted]:
    """Fetch every unit on the executors ONCE into the new Delta table `staging` (a quoted three-part name),
    then collect only the outcome rows; `data` reads the staged rows. The table is dropped on exit."""
    try:
        units_dataframe(spark, job).write.format("delta").saveAsTable(staging)
        fetched = spark.table(staging)
        result = Extracted(fetched.where("_tag_rows IS NULL").select(*TIMESERIES.schema.names))
        outcomes = fetched.where("_tag_rows IS NOT NULL").select("tag_webid", *OUTCOMES.names)
        for webid, rows, requests, error in outcomes.collect():
            result.rows[webid] = result.rows.get(webid, 0) + rows
            result.requests += requests
            if error is not None:
                result.failed.setdefault(webid, error)
        yield result
    finally:
        spark.sql(f"DROP TABLE IF EXISTS {staging}")


def staging_table(location: Any) -> str:
    """A fresh table name in the checkpoint schema, where one run's fetch is staged."""
    return spark_sql.scratch_table(location, f"pi_fetch_{uuid.uuid4().hex[:16]}")


def fetch_and_merge(sink: SparkWriter, job: UnitsJob) -> FetchResult:
    """The runner's timeseries units on Spark: rows MERGEd from the executors' DataFrame, outcomes returned in
    the shape of the local path's `FetchResult` (its table empty: the rows are already in Delta)."""
    sink.spark.sql(spark_sql.create_schema_sql(WATERMARKS, sink.location))
    with extract(sink.spark, job, staging_table(sink.location)) as extracted:
        if extracted.row_count:
            dates = {"partition_date": job.partition_dates()}
            sink.merge_dataframe(TIMESERIES, extracted.data, dates, reread_from=job.reread_from)
    log.info(
        "distributed fetch: %d units, %d rows, %d tags failed",
        len(job.units),
        extracted.row_count,
        len(extracted.failed),
    )
    return FetchResult(
        TIMESERIES.schema.empty_table(), failed=extracted.failed, rows=extracted.rows, requests=extracted.requests
    )
