"""`spark.read.format("pi_web_api")`: PI recorded values as a DataFrame with the bronze TIMESERIES schema.

A PySpark Python Data Source. The driver resolves the tags and the window once, then builds the same `Plan` as
the local runner (`plan.Plan`: groups of tags × grid-aligned time windows); each unit is one
Spark partition, fetched on an executor by the same code as the local extractor
(`extract.timeseries.fetch_recorded`), so both read the same rows. Adjacent windows never overlap and a page
edge never splits a timestamp, so rows are neither lost nor duplicated however the read is partitioned.

    from osipi_connector.spark.datasource import register
    register(spark)
    df = (spark.read.format("pi_web_api")
          .option("url", "https://pi.example.com/piwebapi")
          .option("tags", "SINUSOID,CDT158")          # or .option("nameFilter", "FIC*") / .option("webids", ...)
          .option("startTime", "*-1d").option("endTime", "*")
          .option("username", dbutils.secrets.get("pi-connector", "pi_username"))
          .option("password", dbutils.secrets.get("pi-connector", "pi_password"))
          .load())

Secrets: credentials travel to executors inside the pickled reader as pydantic `SecretStr` (never in a repr
or a log line); Spark's default `spark.redaction.regex` masks options named password/token/secret in plans.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa
from pydantic import SecretStr
from pyspark.sql.datasource import DataSource, DataSourceReader, InputPartition
from pyspark.sql.types import StructType

from osipi_connector.extract.clock import server_now
from osipi_connector.extract.points import resolve_points
from osipi_connector.extract.timeseries import TagWindow, fetch_recorded
from osipi_connector.lake.schemas import TIMESERIES
from osipi_connector.lake.spark_schema import spark_schema
from osipi_connector.piwebapi.client import PIWebAPIClient
from osipi_connector.piwebapi.pitime import UTC, parse_interval, parse_pi_time
from osipi_connector.piwebapi.settings import ClientSettings, Credentials
from osipi_connector.plan import Plan, Tag

FORMAT = "pi_web_api"
OPTIONS = {
    "url": "PI Web API base URL ending in /piwebapi (required)",
    "tags": "comma-separated point names on the data server",
    "webids": "comma-separated point WebIDs",
    "nameFilter": "point name filter with * and ? wildcards",
    "dataServer": "data server name or WebID (default: the first one)",
    "startTime": "window start, ISO-8601 or PI time relative to the server clock (default *-1d)",
    "endTime": "window end (default *)",
    "authType": "anonymous | basic | kerberos | oauth (default: basic with username, else anonymous)",
    "username": "basic auth user",
    "password": "basic auth password",
    "token": "static bearer token (authType oauth)",
    "verifySsl": "true | false (default true)",
    "caBundle": "PEM file of the CA that signed the server certificate",
    "tagsPerPartition": "tags fetched by one partition, one /batch request per page (default 100)",
    "partitionWindow": "longest time window of one partition, a PI span such as 1d or 6h (default 1d)",
    "maxCount": "values per tag and request before paging by time (default 10000)",
}


class OptionError(ValueError):
    """A read option is missing or wrong; the message names the option and what it accepts."""


@dataclass(frozen=True)
class UnitPartition(InputPartition):
    """One work unit: up to `tagsPerPartition` tags over one grid-aligned window."""

    windows: tuple[TagWindow, ...]


def unit_of(partition: InputPartition) -> UnitPartition:
    """A partition Spark hands back to `read`: one that `partitions()` listed."""
    if not isinstance(partition, UnitPartition):
        raise TypeError(f"{FORMAT}: expected a UnitPartition, got {type(partition).__name__}")
    return partition


@dataclass(frozen=True)
class ReadOptions:
    settings: ClientSettings
    credentials: Credentials
    webids: tuple[str, ...]
    names: tuple[str, ...]
    name_filter: str | None
    data_server: str | None
    start: str
    end: str
    tags_per_partition: int
    partition_window: timedelta
    max_count: int

    @classmethod
    def parse(cls, options: dict[str, str]) -> ReadOptions:
        opts = {k.lower(): v for k, v in options.items()}
        unknown = sorted(set(opts) - {"path"} - {k.lower() for k in OPTIONS})
        if unknown:
            raise OptionError(f"unknown option(s) {unknown}; the {FORMAT} source reads {sorted(OPTIONS)}")
        if not opts.get("url"):
            raise OptionError(f'option "url" is required: {OPTIONS["url"]}')

        def listed(key: str) -> tuple[str, ...]:
            return tuple(t.strip() for t in opts.get(key, "").split(",") if t.strip())

        def positive(key: str, default: int) -> int:
            text = opts.get(key.lower(), str(default))
            if not text.isdigit() or int(text) < 1:
                raise OptionError(f"option {key!r} must be a positive integer, got {text!r}")
            return int(text)

        auth = opts.get("authtype") or ("basic" if opts.get("username") else "anonymous")
        verify = opts.get("verifyssl", "true").lower()
        if verify not in ("true", "false"):
            raise OptionError(f'option "verifySsl" must be true or false, got {verify!r}')
        try:
            settings = ClientSettings(
                url=opts["url"], auth_type=auth, verify_ssl=verify == "true", ca_bundle=opts.get("cabundle")
            )
            window = parse_interval(opts.get("partitionwindow", "1d"))
        except ValueError as exc:
            raise OptionError(f"invalid {FORMAT} option: {exc}") from None
        secret = {k: SecretStr(opts[k]) for k in ("password", "token") if opts.get(k)}
        credentials = Credentials(username=opts.get("username"), **secret)
        read = cls(
            settings=settings,
            credentials=credentials,
            webids=listed("webids"),
            names=listed("tags"),
            name_filter=opts.get("namefilter") or None,
            data_server=opts.get("dataserver") or None,
            start=opts.get("starttime", "*-1d"),
            end=opts.get("endtime", "*"),
            tags_per_partition=positive("tagsPerPartition", 100),
            partition_window=window,
            max_count=positive("maxCount", 10_000),
        )
        if not (read.webids or read.names or read.name_filter):
            raise OptionError('select points with option "tags" (names), "webids" or "nameFilter"')
        return read

    def client(self) -> PIWebAPIClient:
        return PIWebAPIClient(self.settings, self.credentials)


class PIWebAPIReader(DataSourceReader):
    def __init__(self, options: ReadOptions) -> None:
        self.options = options
        self.run_id = f"spark-{uuid.uuid4().hex}"
        self.ingested_at = datetime.now(UTC)

    def partitions(self) -> list[UnitPartition]:
        """Runs on the driver: resolve the tags and the window, then one partition per work unit."""
        opts = self.options
        with opts.client() as client:
            points = resolve_points(
                client,
                data_server=opts.data_server,
                webids=opts.webids,
                names=opts.names,
                name_filter=opts.name_filter,
                run_id=self.run_id,
                ingested_at=self.ingested_at,
            )
            now = server_now(client)
        start, end = parse_pi_time(opts.start, now), parse_pi_time(opts.end, now)
        if end <= start:
            raise OptionError(f"startTime {opts.start!r} ({start}) is not before endTime {opts.end!r} ({end})")
        tags = [
            Tag(w, n) for w, n in zip(points.column("tag_webid").to_pylist(), points.column("tag_name").to_pylist())
        ]
        if not tags:
            raise OptionError(f"nameFilter {opts.name_filter!r} matches no PI point; check the pattern (* and ?)")
        plan = Plan.build(
            tags,
            ((tag, start, end) for tag in tags),
            batch_size=opts.tags_per_partition,
            max_window=opts.partition_window,
        )
        return [UnitPartition(unit.windows) for unit in plan.units]

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        """Runs on an executor: the unit's recorded values; a tag that fails after retries fails the task."""
        partition = unit_of(partition)
        with self.options.client() as client:
            fetched = fetch_recorded(
                client,
                list(partition.windows),
                max_count=self.options.max_count,
                run_id=self.run_id,
                ingested_at=self.ingested_at,
            )
        if fetched.failed:
            reasons = "; ".join(f"{webid}: {why}" for webid, why in sorted(fetched.failed.items()))
            raise RuntimeError(f"{FORMAT}: {len(fetched.failed)} tag(s) could not be read — {reasons}")
        yield from fetched.table.to_batches()


class PIWebAPIDataSource(DataSource):
    """`format("pi_web_api")`; options are listed in `OPTIONS`."""

    @classmethod
    def name(cls) -> str:
        return FORMAT

    def schema(self) -> StructType:
        return spark_schema(TIMESERIES.schema)

    def reader(self, schema: StructType) -> PIWebAPIReader:
        return PIWebAPIReader(ReadOptions.parse(dict(self.options)))


def register(spark: Any) -> None:
    """Make `spark.read.format("pi_web_api")` available in this session."""
    spark.dataSource.register(PIWebAPIDataSource)
