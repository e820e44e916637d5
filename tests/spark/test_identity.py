"""The Databricks path against the embedded one, on real tables: `PILakeflowConnector` with `SparkSink` on local
Spark + Delta Lake (timeseries units fetched on the executors: `performance.distributed: true`, `local[2]`)
lands the same rows as with the delta-rs `DeltaSink`, for the same simulator window; and on Spark a re-run
changes nothing, a run killed between the data MERGE and the watermark MERGE is repaired by the next, late
and edited values inside the lookback are picked up.

Compared: every column except the per-run ones, which differ between any two runs on any engine —
`run_id` / `last_run_id` (a fresh UUID per run), `ingested_at` (the run's start time) and `updated_at` (when
the watermark row was written).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import requests

from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import (
    ASSET_HIERARCHY,
    ELEMENT_ATTRIBUTES,
    EVENT_FRAMES,
    RUN_METRICS,
    TAGS,
    TIMESERIES,
    WATERMARKS,
    TableSpec,
)
from osipi_connector.lake.sink import Location, Sink, WriteResult
from osipi_connector.lake.spark_sink import SparkSink
from osipi_connector.piwebapi.pitime import format_datetime
from osipi_connector.runner import PILakeflowConnector, RunResult
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.server import RunningSimulator, running_simulator
from tests.conftest import FIXED_NOW
from tests.extract.conftest import served_rows, table_rows
from tests.sparksession import fresh_location

END = FIXED_NOW
START = END - timedelta(hours=1)
AF_DATABASE = "\\\\PISIM-AF\\Plant"
PER_RUN = {"run_id", "last_run_id", "ingested_at", "updated_at"}
pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(1200)]  # ~10 Delta MERGEs per run
COMPARED = (TIMESERIES, TAGS, ASSET_HIERARCHY, ELEMENT_ATTRIBUTES, EVENT_FRAMES, WATERMARKS)


def config(url: str, root: Path, **extraction: object) -> dict:
    """11 points of several types over one hour: 3 tag groups x two 30-minute windows = 6 units."""
    return {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {
            "name_filter": "*00001*",
            "af_database": AF_DATABASE,
            "mode": "full",
            "start_date": format_datetime(START),
            "end_date": format_datetime(END),
            "batch_size": 4,
            "max_count_per_tag": 500,
            "lookback": "1h",  # an incremental re-run re-reads exactly the window
            **extraction,
        },
        "performance": {"workers": 2, "max_window": "30m", "distributed": True},
        "retry": {"max_attempts": 2},
        "local": {"lakehouse_root": str(root)},
    }


def spark_sink(spark, root: Path, cls: type[SparkSink] = SparkSink) -> SparkSink:
    """Tables named as users name them (`main.bronze_<id>.pi_timeseries`) in fresh schemas under `root`:
    tests sharing the session never see each other's rows."""
    return cls(spark, fresh_location(spark, root))


def delta_sink(root: Path) -> DeltaSink:
    return DeltaSink(root, Location("main", "bronze", "checkpoints"))


def rows(sink: Sink, spec: TableSpec) -> list[tuple]:
    """Every row but its per-run columns, sorted (a list: a duplicate would show)."""
    table = sink.read(spec)
    table = table.select([n for n in table.column_names if n not in PER_RUN])
    return sorted(tuple(repr(v) for v in row.values()) for row in table.to_pylist())


def run(sink: Sink, cfg: dict, datasets=("tags", "af", "timeseries", "event_frames")) -> RunResult:
    if sink.engine != "spark":  # distributed units need Spark; the embedded path runs them on its thread pool
        cfg = cfg | {"performance": cfg["performance"] | {"distributed": False}}
    return PILakeflowConnector(cfg, sink=sink).run(datasets=list(datasets))


@pytest.fixture(scope="module")
def landed(spark, simulator: RunningSimulator, tmp_path_factory) -> tuple[SparkSink, DeltaSink, dict]:
    """One run per engine over the same window, every dataset."""
    root = tmp_path_factory.mktemp("embedded")
    on_spark, embedded = spark_sink(spark, tmp_path_factory.mktemp("spark-tables")), delta_sink(root)
    cfg = config(simulator.url, root)
    for sink in (on_spark, embedded):
        result = run(sink, cfg)
        assert result.status == "success", result.errors
    metrics = on_spark.read(RUN_METRICS).to_pylist()
    assert [m["engine"] for m in metrics] == ["spark"]
    return on_spark, embedded, cfg


@pytest.mark.parametrize("spec", COMPARED, ids=lambda s: s.name)
def test_spark_and_embedded_tables_are_identical(landed, spec: TableSpec) -> None:
    on_spark, embedded, _ = landed
    expected = rows(embedded, spec)
    assert expected, f"{spec.name}: the window must put rows in every table"
    assert rows(on_spark, spec) == expected


def test_the_spark_tables_hold_exactly_what_the_source_served(landed, simulator: RunningSimulator) -> None:
    on_spark, _, _ = landed
    webids = on_spark.read(TAGS, columns=["tag_webid"])["tag_webid"].to_pylist()
    assert len(webids) == 11
    served = served_rows(simulator.url, webids, format_datetime(START), format_datetime(END))
    got = table_rows(on_spark)
    assert len(got) == len(served)
    assert set(got) == served


def test_a_rerun_on_spark_changes_nothing(landed) -> None:
    on_spark, _, cfg = landed
    before = {spec.name: rows(on_spark, spec) for spec in COMPARED}

    again = run(on_spark, cfg | {"extraction": cfg["extraction"] | {"mode": "incremental"}})

    assert again.status == "success", again.errors
    assert again.rows["pi_timeseries"] > 0  # the window was read again and MERGEd...
    assert {spec.name: rows(on_spark, spec) for spec in COMPARED} == before  # ...and changed nothing


class CrashOnWatermarks(SparkSink):
    """Dies when the watermarks are written: the data MERGE before it (from the executors) has committed."""

    def merge(self, spec: TableSpec, data: pa.Table, **hints) -> WriteResult:
        if spec.name == WATERMARKS.name:
            raise OSError("simulated crash between the data commit and the watermark commit")
        return super().merge(spec, data, **hints)


def test_a_run_killed_between_data_and_watermarks_is_repaired_by_the_next(
    spark, simulator: RunningSimulator, landed, tmp_path
) -> None:
    reference, _, _ = landed
    crashing = spark_sink(spark, tmp_path, CrashOnWatermarks)
    cfg = config(simulator.url, tmp_path, mode="incremental")
    crashed = run(crashing, cfg, datasets=["timeseries"])
    assert crashed.status in ("partial", "failed")
    assert any("simulated crash" in e for e in crashed.errors)
    sink = SparkSink(spark, crashing.location)  # the same tables, a sink that survives
    assert table_rows(sink)  # the data landed...
    assert sink.read(WATERMARKS).num_rows == 0  # ...its watermarks did not

    repaired = run(sink, cfg, datasets=["timeseries"])

    assert repaired.status == "success", repaired.errors
    assert rows(sink, TIMESERIES) == rows(reference, TIMESERIES)
    marks = sink.read(WATERMARKS).to_pylist()
    assert {(m["low_watermark"], m["high_watermark"], m["last_status"]) for m in marks} == {(START, END, "ok")}
    assert len(marks) == 11


def test_late_and_edited_values_inside_the_lookback_are_picked_up_on_spark(spark, tmp_path) -> None:
    first_now, later = END, END + timedelta(hours=1)
    sim = SimConfig(seed=11, tags=40, now=first_now, late_share=0.5, edit_share=0.2, rate_limit_max_requests=0)
    start = format_datetime(first_now - timedelta(hours=2))
    sink = spark_sink(spark, tmp_path)
    with running_simulator(sim) as first:
        server = requests.get(f"{first.url}/dataservers").json()["Items"][0]["WebId"]
        points = requests.get(f"{first.url}/dataservers/{server}/points", params={"maxCount": 8}).json()["Items"]
        webids = [p["WebId"] for p in points]
        cfg = config(first.url, tmp_path, mode="incremental", start_date=start, end_date=None, lookback="2h")
        cfg["extraction"] |= {"name_filter": None, "tags": webids}
        assert run(sink, cfg, datasets=["timeseries"]).status == "success"
        early = served_rows(first.url, webids, start, format_datetime(first_now))
    sim.now = later
    with running_simulator(sim) as second:
        cfg["pi_web_api"]["url"] = second.url
        result = run(sink, cfg, datasets=["timeseries"])
        assert result.status == "success", result.errors
        served = served_rows(second.url, webids, start, format_datetime(later))
    # the source changed after the first run (late arrivals, edits), so the test means something
    assert {r for r in served if r[1] <= first_now} != early
    got = table_rows(sink)
    assert len(got) == len(served)
    assert set(got) == served
    assert {m["high_watermark"] for m in sink.read(WATERMARKS).to_pylist()} == {later}
