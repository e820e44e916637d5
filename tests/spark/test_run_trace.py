"""The run's trace and the watermark repair on the Spark sink (the real local Spark + Delta session): a run
stopped before its outcome leaves a `running` row the next run marks `died`; watermarks past the server's
clock are moved back to the data committed (`SparkSink.latest`) and counted in pi_run_metrics."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pytest
import requests

from osipi_connector import PILakeflowConnector
from osipi_connector.lake.schemas import RUN_METRICS, WATERMARKS
from osipi_connector.lake.sink import Location
from osipi_connector.lake.spark_sink import SparkSink
from osipi_connector.piwebapi.pitime import format_datetime
from tests.conftest import FIXED_NOW

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class StoppedAtTheData(SparkSink):
    """Stops the run when its rows are written, as a cancelled job does: no handler writes its outcome."""

    def merge(self, spec, data, reread_from=None):
        if spec.name == "pi_timeseries":
            raise KeyboardInterrupt("job cancelled")
        return super().merge(spec, data, reread_from)


def test_a_stopped_run_is_marked_died_and_future_watermarks_are_repaired(spark, simulator) -> None:
    location = Location("spark_catalog", "bronze_trace", "checkpoints_trace")
    server = requests.get(f"{simulator.url}/dataservers").json()["Items"][0]
    points = requests.get(f"{simulator.url}/dataservers/{server['WebId']}/points", params={"maxCount": 3}).json()
    cfg = {
        "pi_web_api": {"url": simulator.url, "auth_type": "anonymous"},
        "extraction": {
            "tag_names": [p["Name"] for p in points["Items"]],
            "mode": "incremental",
            "start_date": format_datetime(FIXED_NOW - timedelta(hours=1)),
            "lookback": "10m",
        },
        "performance": {"workers": 2, "max_window": "1d", "distributed": False},
    }

    def run(sink: SparkSink):
        return PILakeflowConnector(cfg, sink=sink).run(datasets=["timeseries"])

    sink = SparkSink(spark, location)
    first = run(sink)
    assert first.status == "success", first.errors
    with pytest.raises(KeyboardInterrupt):
        run(StoppedAtTheData(spark, location))
    ahead = FIXED_NOW + timedelta(days=1)
    marks = [{**m, "high_watermark": ahead} for m in sink.read(WATERMARKS).to_pylist()]
    sink.merge(WATERMARKS, pa.Table.from_pylist(marks, schema=WATERMARKS.schema))

    third = run(SparkSink(spark, location))

    assert third.status == "success", third.errors
    assert len(third.died) == 1
    assert third.watermarks_repaired == len(marks)
    assert {m["high_watermark"] for m in sink.read(WATERMARKS).to_pylist()} == {FIXED_NOW}
    rows = {m["run_id"]: m for m in SparkSink(spark, location).read(RUN_METRICS).to_pylist()}
    assert len(rows) == 3
    (stopped,) = [r for r in rows.values() if r["run_id"] not in (first.run_id, third.run_id)]
    assert stopped["status"] == "died"
    assert stopped["run_id"] in third.died[0]
    assert rows[third.run_id]["watermarks_repaired"] == len(marks)
    assert rows[third.run_id]["datasets"] == ["timeseries"]
    assert rows[first.run_id]["status"] == "success"
    assert rows[first.run_id]["requests"] > 0
