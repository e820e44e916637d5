"""Distributed extraction on local PySpark: the runner's work units fetched by Python Data Source partitions
from the simulator over HTTP, compared with the local (thread pool) path.

Local Spark has no Delta, so the MERGE itself cannot run here: `SparkSink` is given the real session wrapped in
`RecordingSpark` (tests/lake/test_spark_statement_order.py), which records the statement text and captures
the source view's rows at the moment the MERGE runs. Everything else (the data source, the executors' fetch,
the checkpoint, the outcome rows) runs for real.
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
from osipi_connector.lake import spark_sql
from osipi_connector.lake.schemas import TIMESERIES
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
from tests.lake.test_spark_statement_order import RecordingSpark, view_of

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


def test_distributed_rows_equal_the_local_path(spark, simulator: RunningSimulator, tags: list[Tag]) -> None:
    unit_job = job(simulator.url, tags)
    assert len(unit_job.units) == 4  # 2 tag groups x 2 windows: several partitions, window edges, paging

    extracted = extract(spark, unit_job)

    expected = local_path(unit_job)
    assert expected.num_rows > 500
    assert as_timeseries(extracted.data).equals(expected)
    assert extracted.failed == {}
    per_tag = dict(zip(*pa.TableGroupBy(expected, "tag_webid").aggregate([([], "count_all")]).columns))
    assert {str(k): v.as_py() for k, v in per_tag.items()} == extracted.rows
    assert extracted.requests >= len(unit_job.units)


def test_a_failing_tag_is_reported_and_the_others_are_returned(
    spark, simulator: RunningSimulator, tags: list[Tag]
) -> None:
    unit_job = job(simulator.url, [*tags, Tag("P0NOSUCHWEBID", "GHOST")])

    extracted = extract(spark, unit_job)

    assert set(extracted.failed) == {"P0NOSUCHWEBID"}
    assert "HTTP 400" in extracted.failed["P0NOSUCHWEBID"]
    good = job(simulator.url, tags)
    assert as_timeseries(extracted.data).equals(local_path(good))  # the same unit's other tags are all there


def test_an_unreachable_server_fails_every_tag_without_failing_the_job(spark, tags: list[Tag]) -> None:
    unit_job = job("http://127.0.0.1:9/piwebapi", tags[:3], retry=RetrySettings(max_attempts=1))

    extracted = extract(spark, unit_job)

    assert extracted.data.count() == 0
    assert set(extracted.failed) == {t.webid for t in tags[:3]}
    assert all("batch request failed" in why for why in extracted.failed.values())


def test_fetch_and_merge_merges_the_executors_rows_then_returns_outcomes(
    spark, simulator: RunningSimulator, tags: list[Tag]
) -> None:
    recorder = RecordingSpark(spark)
    sink = SparkSink(recorder, Location())
    unit_job = job(simulator.url, [*tags[:4], Tag("P0NOSUCHWEBID")])

    fetched = fetch_and_merge(sink, unit_job)

    merge = recorder.statements[-1]  # after CREATE SCHEMA / CREATE TABLE / the schema probe
    # pruned to the dates the windows can hold
    assert merge == spark_sql.merge_sql(TIMESERIES, Location(), view_of(merge), {"partition_date": [START.date()]})
    merged = recorder.sources[view_of(merge)].cast(TIMESERIES.schema).sort_by(KEYS)
    assert merged.equals(local_path(job(simulator.url, tags[:4])))
    assert fetched.table.num_rows == 0  # the rows went to Delta from the executors, not to the driver
    assert sum(fetched.rows.values()) == merged.num_rows
    assert set(fetched.failed) == {"P0NOSUCHWEBID"}


def test_no_secret_in_plans_logs_or_reprs(spark, simulator: RunningSimulator, tags: list[Tag], capsys, caplog) -> None:
    unit_job = job(simulator.url, tags[:2])
    caplog.set_level(logging.DEBUG)

    units_dataframe(spark, unit_job).explain(mode="extended")
    extracted = extract(spark, unit_job)
    extracted.data.explain(mode="extended")
    fetch_and_merge(SparkSink(RecordingSpark(spark), Location()), unit_job)

    shown = capsys.readouterr().out + caplog.text + repr(unit_job) + str(spark.conf.getAll)
    assert "pi_web_api_units_" in shown  # the plan was printed...
    assert SECRET not in shown  # ...without the password
    assert extracted.failed == {}  # and the executors did use the credentials (basic auth accepted)


def run_on_spark(url: str, tags: list[Tag], client_url: str, spark, **config) -> tuple[RecordingSpark, RunResult]:
    """One full-mode run of the connector with a SparkSink (so `performance.distributed: auto` is on)."""
    recorder = RecordingSpark(spark)
    recorder.progress = []  # the Progress reports, kept beside the statements
    settings = {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {"tags": [t.webid for t in tags], "mode": "full", "start_date": START, "end_date": END},
        "performance": {"max_window": "30m"},
        "retry": {"max_attempts": 1},
    }
    with PIWebAPIClient(ClientSettings(url=client_url, auth_type="anonymous")) as client:
        sink = SparkSink(recorder, Location())
        connector = PILakeflowConnector(settings | config, sink=sink, client=client, progress=recorder.progress.append)
        return recorder, connector.run(datasets=["timeseries"])


def merged(recorder: RecordingSpark, table: str) -> list[tuple[int, pa.Table]]:
    """(statement index, source rows) of every MERGE into `table`, in order."""
    return [
        (i, recorder.sources[view_of(s)])
        for i, s in enumerate(recorder.statements)
        if s.startswith(f"MERGE INTO `main`.`{'checkpoints' if table == 'pi_watermarks' else 'bronze'}`.`{table}`")
    ]


def test_the_runner_merges_rows_from_the_executors_then_advances_watermarks(
    spark, simulator: RunningSimulator, tags: list[Tag]
) -> None:
    recorder, result = run_on_spark(simulator.url, tags[:4], simulator.url, spark)

    assert result.status == "success", result.errors
    [(data_at, data)] = merged(recorder, "pi_timeseries")
    [(marks_at, marks)] = merged(recorder, "pi_watermarks")
    assert data_at < marks_at  # watermarks only after the data MERGE
    expected = local_path(job(simulator.url, tags[:4]))
    assert data.num_rows == expected.num_rows == result.rows["pi_timeseries"]
    assert data.column("run_id").unique().to_pylist() == [result.run_id]
    assert sorted(marks.column("item_id").to_pylist()) == sorted(t.webid for t in tags[:4])
    assert set(marks.column("last_status").to_pylist()) == {"ok"}
    assert set(marks.column("high_watermark").to_pylist()) == {END}
    units = 2  # 4 tags (one /batch group) x two 30-minute windows
    assert recorder.progress[-1] == Progress("timeseries", units, units, data.num_rows)


def test_the_runner_holds_back_the_watermarks_of_tags_the_executors_could_not_read(
    spark, simulator: RunningSimulator, tags: list[Tag]
) -> None:
    # the driver's client reaches the simulator; the executors are configured with a closed port
    recorder, result = run_on_spark("http://127.0.0.1:9/piwebapi", tags[:2], simulator.url, spark)

    assert result.status == "failed"
    assert result.tags_failed == 2
    assert all("batch request failed" in e for e in result.errors)
    assert merged(recorder, "pi_timeseries") == []  # nothing fetched, nothing merged
    [(_, marks)] = merged(recorder, "pi_watermarks")
    assert set(marks.column("last_status").to_pylist()) == {"failed"}
    assert set(marks.column("high_watermark").to_pylist()) == {None}  # re-read from the start next run


def test_distributed_false_keeps_the_thread_pool_with_a_spark_sink(
    spark, simulator: RunningSimulator, tags: list[Tag]
) -> None:
    # executors would fail (closed port); the driver's pool uses the working client, so the run succeeds
    recorder, result = run_on_spark(
        "http://127.0.0.1:9/piwebapi", tags[:2], simulator.url, spark, performance={"distributed": False}
    )
    assert result.status == "success", result.errors
    [(_, data)] = merged(recorder, "pi_timeseries")
    assert data.num_rows == local_path(job(simulator.url, tags[:2])).num_rows


@pytest.mark.parametrize(
    ("setting", "engine", "serverless", "on"),
    [
        ("auto", "spark", "", True),
        ("auto", "spark", "TRUE", False),  # serverless Python workers cannot reach a PI server
        ("auto", "delta-rs", "", False),
        (False, "spark", "", False),
        (True, "spark", "true", True),  # an explicit true is obeyed
    ],
)
def test_distributed_setting(setting, engine: str, serverless: str, on: bool, monkeypatch) -> None:
    monkeypatch.setenv("IS_SERVERLESS", serverless)
    sink = SimpleNamespace(engine=engine)
    assert dispatch.enabled(PerformanceConfig(distributed=setting), sink) is on


def test_distributed_true_without_spark_says_what_to_change() -> None:
    with pytest.raises(ConfigError, match=r"performance\.distributed: true needs the Spark sink"):
        dispatch.enabled(PerformanceConfig(distributed=True), SimpleNamespace(engine="delta-rs"))
