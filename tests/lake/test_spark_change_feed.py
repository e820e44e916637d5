"""The change feed (extraction.change_feed: stream_updates) through the Spark sink on the real local Spark + Delta
session: edits and removals older than the lookback land (DELETE of the changed ranges, then MERGE), the table
equals a fresh full read of the simulator; a second DELETE of the same ranges finds nothing."""

from __future__ import annotations

from datetime import timedelta

import pytest

from osipi_connector import PILakeflowConnector
from osipi_connector.lake.schemas import CHANGE_MARKERS
from osipi_connector.lake.spark_sink import SparkSink
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.server import running_simulator
from tests.extract.conftest import table_rows
from tests.extract.test_change_feed import SIM, T0, config, tags_of, truth
from tests.lake.test_range_delete import assert_delete_ranges

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # two runs through local Spark: MERGEs take seconds


def test_spark_sink_lands_the_change_feed_exactly(spark, spark_location, tmp_path) -> None:
    sink = SparkSink(spark, spark_location)
    with running_simulator(SimConfig(now=T0, **SIM)) as source:
        tags = tags_of(source, 4)
        cfg = config(source.url, tmp_path, tags, feed=True)
        cfg["performance"]["distributed"] = False
        for hours in (0, 5):
            source.sim.config.now = T0 + timedelta(hours=hours)
            result = PILakeflowConnector(cfg, sink=sink).run(datasets=["timeseries"])
            assert result.status == "success", result.errors
        expected = truth(source, sink)
        got = table_rows(sink)
        assert len(got) == len(set(got))
        assert set(got) == expected
        assert len(sink.read(CHANGE_MARKERS)) == len(tags)


def test_delete_ranges_removes_only_the_ranges_rows(spark, spark_location) -> None:
    assert_delete_ranges(SparkSink(spark, spark_location))
