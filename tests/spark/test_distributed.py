"""Distributed extraction on local PySpark: the runner's work units fetched by Python Data Source partitions
from the simulator over HTTP, compared with the local (thread pool) path.

Everything runs for real, the MERGEs into Delta tables included; `StatementSpy` (tests/sparksession.py) only
notes the order of the statements and the source rows each MERGE read.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from types import SimpleNamespace

import pyarrow as pa
import pytest

from osipi_connector.config import ConfigError, PerformanceConfig
from osipi_connector.extract.points import resolve_points
from osipi_connector.extract.timeseries import fetch_recorded
from osipi_connector.lake.merge_conditions import sql_literal
from osipi_connector.lake.schemas import TIMESERIES, WATERMARKS
from osipi_connector.lake.sink import Location
from osipi_connector.lake.spark_sink import SparkSink
from osipi_connector.piwebapi.client import PIWebAPIClient
from osipi_connector.piwebapi.pitime import parse_iso
from osipi_connector.piwebapi.settings import ClientSettings, Credentials, RetrySettings
from osipi_connector.plan import Tag, plan_units
from osipi_connector.runner import PILakeflowConnector, Progress, RunResult
from osipi_connector.simulator.server import RunningSimulator
from osipi_connector.spark import dispatch
from osipi_connector.spark.distributed import UnitsJob, extract, fetch_and_merge, units_dataframe
from tests.conftest import FIXED_NOW
from tests.sparksession import StatementSpy

START, END = parse_iso("2025-03-01T11:00:00Z"), parse_iso("2025-03-01T12:00:00Z")
NAME_FILTER = "*00001*"  # 11 points of several types (counters, flows, levels, digital states)
SECRET = "s3cret-pw-0xC0FFEE"
KEYS = [(k, "ascending") for k in TIMESERIES.keys]


@pytest.fixture(scope="module")
def tags(simulator: RunningSimulator) -> list[Tag]:
    with PIWebAPIClient(ClientSettings(url=simulator.url, auth_type="anonymous")) as client:
        points = resolve_points(
            client, data_server=None, webids=[], names=[], name_filter=NAME_FILTER, run_id="x", ingested_at=FIXED_NOW
        )
    return [Tag(w, n) for w, n in zip(points["tag_webid"].to_pylist(), points["tag_name"].to_pylist(), strict=True)]


def job(url: str, tags: list[Tag], **settings) -> UnitsJob:
    """The units the runner plans for `tags` over one hour: 6 tags per unit, 30-minute windows, paging at 200."""
    units = plan_units(((t, START, END) for t in tags), batch_size=6, max_window=timedelta(minutes=30))
    return UnitsJob(
        settings=ClientSettings(url=url, auth_type="basic", **settings),
        credentials=Credentials(username="piuser", password=SECRET),
        units=tuple(units),
        max_count=200,
        max_values=None,
        run_id="run-dist",
        ingested_at=FIXED_NOW,
    )


def local_path(unit_job: UnitsJob) -> pa.Table:
    """What the runner's thread pool reads for the same units (one fetch_recorded per unit)."""
    with PIWebAPIClient(unit_job.settings, unit_job.credentials) as client:
        tables = [
            fetch_recorded(
                client,
                list(unit.windows),
                max_count=unit_job.max_count,
                run_id=unit_job.run_id,
                ingested_at=unit_job.ingested_at,
            ).table
            for unit in unit_job.units
        ]
    return pa.concat_tables(tables).sort_by(KEYS)


def as_timeseries(df) -> pa.Table:
    return df.toArrow().cast(TIMESERIES.schema).sort_by(KEYS)


@pytest.fixture
def staging(spark_location) -> str:
    return f"main.{spark_location.checkpoint_schema}.pi_fetch_test"


def test_distributed_rows_equal_the_local_path(
    spark, staging: str, simulator: RunningSimulator, tags: list[Tag]
) -> None:
    unit_job = job(simulator.url, tags)
    assert len(unit_job.units) == 4  # 2 tag groups x 2 windows: several partitions, window edges, paging

    with extract(spark, unit_job, staging) as extracted:
        data = as_timeseries(extracted.data)

    assert not spark.catalog.tableExists(staging)  # the staged fetch is dropped
    expected = local_path(unit_job)
    assert expected.num_rows > 500
    assert data.equals(expected)
    assert extracted.failed == {}
    per_tag = dict(zip(*pa.TableGroupBy(expected, "tag_webid").aggregate([([], "count_all")]).columns))
    assert {str(k): v.as_py() for k, v in per_tag.items()} == extracted.rows
    assert extracted.requests >= len(unit_job.units)


def test_a_failing_tag_is_reported_and_the_others_are_returned(
    spark, staging: str, simulator: RunningSimulator, tags: list[Tag]
) -> None:
    unit_job = job(simulator.url, [*tags, Tag("P0NOSUCHWEBID", "GHOST")])

    with extract(spark, unit_job, staging) as extracted:
        data = as_timeseries(extracted.data)

    assert set(extracted.failed) == {"P0NOSUCHWEBID"}
    assert "HTTP 400" in extracted.failed["P0NOSUCHWEBID"]
    good = job(simulator.url, tags)
    assert data.equals(local_path(good))  # the same unit's other tags are all there


def test_an_unreachable_server_fails_every_tag_without_failing_the_job(spark, staging: str, tags: list[Tag]) -> None:
    unit_job = job("http://127.0.0.1:9/piwebapi", tags[:3], retry=RetrySettings(max_attempts=1))

    with extract(spark, unit_job, staging) as extracted:
        assert extracted.data.count() == 0

    assert set(extracted.failed) == {t.webid for t in tags[:3]}
    assert all("batch request failed" in why for why in extracted.failed.values())


def test_fetch_and_merge_merges_the_executors_rows_then_returns_outcomes(
    spark, spark_location, simulator: RunningSimulator, tags: list[Tag]
) -> None:
    sink = SparkSink(spark, spark_location)
    unit_job = job(simulator.url, [*tags[:4], Tag("P0NOSUCHWEBID")])

    fetched = fetch_and_merge(sink, unit_job)

    stored = spark.table(sink.table_name(TIMESERIES)).toArrow().cast(TIMESERIES.schema).sort_by(KEYS)
    assert stored.equals(local_path(job(simulator.url, tags[:4])))
    assert fetched.table.num_rows == 0  # the rows went to Delta from the executors, not to the driver
    assert sum(fetched.rows.values()) == stored.num_rows
    assert set(fetched.failed) == {"P0NOSUCHWEBID"}
    assert fetch_and_merge(sink, unit_job).rows == fetched.rows  # a re-run reads the same...
    assert spark.table(sink.table_name(TIMESERIES)).count() == stored.num_rows  # ...and lands no duplicate


def test_no_secret_in_plans_logs_or_reprs(
    spark, spark_location, staging: str, simulator: RunningSimulator, tags: list[Tag], capsys, caplog
) -> None:
    unit_job = job(simulator.url, tags[:2])
    caplog.set_level(logging.DEBUG)
    # py4j's own DEBUG lines recurse without end when a caught Java exception is formatted while logging
    # (Py4JJavaError.__str__ calls back into the gateway, which logs again): everything else stays at DEBUG
    caplog.set_level(logging.INFO, logger="py4j")

    units_dataframe(spark, unit_job).explain(mode="extended")
    with extract(spark, unit_job, staging) as extracted:
        extracted.data.explain(mode="extended")
    fetch_and_merge(SparkSink(spark, spark_location), unit_job)

    shown = capsys.readouterr().out + caplog.text + repr(unit_job) + str(spark.conf.getAll)
    assert "pi_web_api_units_" in shown  # the plan was printed...
    assert SECRET not in shown  # ...without the password
    assert extracted.failed == {}  # and the executors did use the credentials (basic auth accepted)


def run_on_spark(
    url: str, tags: list[Tag], client_url: str, spark, location: Location, **config
) -> tuple[StatementSpy, RunResult]:
    """One full-mode run of the connector with a SparkSink (so `performance.distributed: auto` is on)."""
    spy = StatementSpy(spark)
    spy.progress = []  # the Progress reports, kept beside the statements
    settings = {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {"tags": [t.webid for t in tags], "mode": "full", "start_date": START, "end_date": END},
        "performance": {"max_window": "30m"},
        "retry": {"max_attempts": 1},
    }
    with PIWebAPIClient(ClientSettings(url=client_url, auth_type="anonymous")) as client:
        sink = SparkSink(spy, location)
        connector = PILakeflowConnector(settings | config, sink=sink, client=client, progress=spy.progress.append)
        return spy, connector.run(datasets=["timeseries"])


def stored(spark, location: Location, spec) -> pa.Table:
    return spark.table(SparkSink(spark, location).table_name(spec)).toArrow().cast(spec.schema)


def test_the_runner_merges_rows_from_the_executors_then_advances_watermarks(
    spark, spark_location, simulator: RunningSimulator, tags: list[Tag]
) -> None:
    recorder, result = run_on_spark(simulator.url, tags[:4], simulator.url, spark, spark_location)

    assert result.status == "success", result.errors
    data_at = [i for i, _ in recorder.merged(TIMESERIES)]
    marks_at = [i for i, _ in recorder.merged(WATERMARKS)]
    assert max(data_at) < min(marks_at)  # watermarks only after the data MERGEs
    # update, insert before the next run's lookback (END - 2 h default), insert from it: files of their own
    reread_from = sql_literal(END - timedelta(hours=2))
    update, before, after = (recorder.statements[i] for i in data_at)
    assert "WHEN MATCHED" in update
    assert f"`timestamp` < {reread_from}" in before
    assert f"`timestamp` >= {reread_from}" in after
    expected = local_path(job(simulator.url, tags[:4]))
    data = stored(spark, spark_location, TIMESERIES)
    marks = stored(spark, spark_location, WATERMARKS)
    assert data.num_rows == expected.num_rows == result.rows["pi_timeseries"]
    assert data.column("run_id").unique().to_pylist() == [result.run_id]
    assert sorted(marks.column("item_id").to_pylist()) == sorted(t.webid for t in tags[:4])
    assert set(marks.column("last_status").to_pylist()) == {"ok"}
    assert set(marks.column("high_watermark").to_pylist()) == {END}
    units = 2  # 4 tags (one /batch group) x two 30-minute windows
    assert recorder.progress[-1] == Progress("timeseries", units, units, data.num_rows)


def test_the_runner_holds_back_the_watermarks_of_tags_the_executors_could_not_read(
    spark, spark_location, simulator: RunningSimulator, tags: list[Tag]
) -> None:
    # the driver's client reaches the simulator; the executors are configured with a closed port
    recorder, result = run_on_spark("http://127.0.0.1:9/piwebapi", tags[:2], simulator.url, spark, spark_location)

    assert result.status == "failed"
    assert result.tags_failed == 2
    assert all("batch request failed" in e for e in result.errors)
    assert recorder.merged(TIMESERIES) == []  # nothing fetched, nothing merged
    marks = stored(spark, spark_location, WATERMARKS)
    assert set(marks.column("last_status").to_pylist()) == {"failed"}
    assert set(marks.column("high_watermark").to_pylist()) == {None}  # re-read from the start next run


def test_distributed_false_keeps_the_thread_pool_with_a_spark_sink(
    spark, spark_location, simulator: RunningSimulator, tags: list[Tag]
) -> None:
    # executors would fail (closed port); the driver's pool uses the working client, so the run succeeds
    _, result = run_on_spark(
        "http://127.0.0.1:9/piwebapi",
        tags[:2],
        simulator.url,
        spark,
        spark_location,
        performance={"distributed": False},
    )
    assert result.status == "success", result.errors
    data = stored(spark, spark_location, TIMESERIES).sort_by(KEYS)
    expected = local_path(job(simulator.url, tags[:2]))
    assert data.drop_columns(["run_id", "ingested_at"]).equals(expected.drop_columns(["run_id", "ingested_at"]))


def connect_session():
    """Stands for `pyspark.sql.connect.session.SparkSession`, what serverless and Databricks Connect give (its
    module needs grpc, not installed here); the class's module is all the check reads."""
    return type("SparkSession", (), {"__module__": "pyspark.sql.connect.session"})()


@pytest.mark.parametrize(
    ("setting", "engine", "connect", "on"),
    [
        ("auto", "spark", False, True),
        ("auto", "spark", True, False),  # serverless: Spark Connect, whose Python workers cannot reach PI
        ("auto", "delta-rs", False, False),
        (False, "spark", False, False),
        (True, "spark", True, True),  # an explicit true is obeyed
    ],
)
def test_distributed_setting(spark, setting, engine: str, connect: bool, on: bool) -> None:
    sink = SimpleNamespace(engine=engine, spark=connect_session() if connect else spark)
    assert dispatch.enabled(PerformanceConfig(distributed=setting), sink) is on


def test_a_classic_session_is_not_spark_connect(spark) -> None:
    assert dispatch.spark_connect(spark) is False
    assert dispatch.spark_connect(connect_session()) is True


def test_distributed_true_without_spark_says_what_to_change() -> None:
    with pytest.raises(ConfigError, match=r"performance\.distributed: true needs the Spark sink"):
        dispatch.enabled(PerformanceConfig(distributed=True), SimpleNamespace(engine="delta-rs"))
