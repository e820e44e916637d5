"""The AF catalogue datasets (templates, categories, analyses, AF tables, annotations, units of measure)
through the Spark sink on the real local Spark + Delta session: the same rows as the delta-rs sink writes
from the same simulator, and a re-run changes nothing (the MERGE keys hold in Spark SQL too)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from osipi_connector import PILakeflowConnector
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import (
    AF_CATALOG_TABLES,
)
from osipi_connector.lake.spark_sink import SparkSink
from osipi_connector.piwebapi.pitime import format_datetime
from tests.conftest import FIXED_NOW

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # two runs through local Spark: MERGEs take seconds each
SPECS = AF_CATALOG_TABLES
DATASETS = ["templates", "categories", "analyses", "af_tables", "annotations", "units_of_measure"]


def config(url: str) -> dict:
    return {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {
            "af_database": "\\\\PISIM-AF\\Plant",
            "tag_names": ["SINUSOID"],
            "mode": "incremental",
            "start_date": format_datetime(FIXED_NOW - timedelta(days=1)),
            "end_date": format_datetime(FIXED_NOW),
        },
        "performance": {"distributed": False},
    }


def content(sink, spec) -> list[dict]:
    rows = sink.read(spec).drop_columns(["ingested_at", "run_id"]).to_pylist()
    return sorted(rows, key=lambda r: tuple(str(v) for v in r.values()))


def test_spark_and_delta_rs_land_the_same_rows_and_a_rerun_changes_nothing(spark, spark_location, simulator, tmp_path):
    spark_sink = SparkSink(spark, spark_location)
    first = PILakeflowConnector(config(simulator.url), sink=spark_sink).run(datasets=DATASETS)
    assert first.status == "success", first.errors
    local = DeltaSink(tmp_path / "local")
    PILakeflowConnector(config(simulator.url), sink=local).run(datasets=DATASETS)
    before = {spec.name: content(spark_sink, spec) for spec in SPECS}
    assert all(before.values())
    assert before == {spec.name: content(local, spec) for spec in SPECS}
    again = PILakeflowConnector(config(simulator.url), sink=spark_sink).run(datasets=DATASETS)
    assert again.status == "success", again.errors
    assert {spec.name: content(spark_sink, spec) for spec in SPECS} == before
