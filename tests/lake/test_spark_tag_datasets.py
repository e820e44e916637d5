"""The four per-tag datasets (pi_interpolated, pi_summary, pi_current_value, pi_point_attributes) through the
Spark sink on the real local Spark + Delta session: the same rows as the delta-rs sink writes from the same
simulator, and a re-run changes nothing (the MERGE keys hold in Spark SQL too)."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from osipi_connector import PILakeflowConnector
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import CURRENT_VALUE, INTERPOLATED, POINT_ATTRIBUTES, SUMMARY, WATERMARKS
from osipi_connector.lake.spark_sink import SparkSink
from osipi_connector.piwebapi.pitime import format_datetime
from tests.conftest import FIXED_NOW

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # two runs through local Spark: MERGEs take seconds each
SPECS = (INTERPOLATED, SUMMARY, CURRENT_VALUE, POINT_ATTRIBUTES)
DATASETS = ["interpolated", "summary", "current_value", "point_attributes"]


def config(url: str, tags: list[str]) -> dict:
    return {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {
            "tag_names": tags,
            "mode": "incremental",
            "start_date": format_datetime(FIXED_NOW - timedelta(hours=4)),
            "end_date": format_datetime(FIXED_NOW),
            "interpolated": {"interval": "15m"},
            "summary": {"duration": "1h", "types": ["Average", "Maximum", "Count"]},
        },
        "performance": {"distributed": False},
    }


def content(sink, spec) -> list[dict]:
    rows = sink.read(spec).drop_columns(["ingested_at", "run_id"]).to_pylist()
    return sorted(rows, key=lambda r: tuple(str(v) for v in r.values()))


def test_spark_and_delta_rs_land_the_same_rows_and_a_rerun_changes_nothing(spark, spark_location, simulator, tmp_path):
    server = requests.get(f"{simulator.url}/dataservers").json()["Items"][0]
    points = requests.get(f"{simulator.url}/dataservers/{server['WebId']}/points", params={"maxCount": 40}).json()
    tags = [p["Name"] for p in points["Items"]][::8]  # five points of several types
    spark_sink = SparkSink(spark, spark_location)
    first = PILakeflowConnector(config(simulator.url, tags), sink=spark_sink).run(datasets=DATASETS)
    assert first.status == "success", first.errors
    local = DeltaSink(tmp_path / "local")
    PILakeflowConnector(config(simulator.url, tags), sink=local).run(datasets=DATASETS)
    before = {spec.name: content(spark_sink, spec) for spec in SPECS}
    assert all(before.values())
    assert before == {spec.name: content(local, spec) for spec in SPECS}
    again = PILakeflowConnector(config(simulator.url, tags), sink=spark_sink).run(datasets=DATASETS)
    assert again.status == "success", again.errors
    assert {spec.name: content(spark_sink, spec) for spec in SPECS} == before
    datasets = {r["dataset"] for r in spark_sink.read(WATERMARKS).to_pylist()}
    assert datasets == {"interpolated", "summary"}
