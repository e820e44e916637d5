"""Event frames that change after they left the lookback window (issue 12, defect 2).

The simulator acknowledges closed alarms and downtimes 5 min to 12 h after they end (15 % never), as plants
do; an hourly incremental run's `Overlapped` search no longer finds a frame that ended before its window.
The frames the table holds as pending are re-read by WebID, so after a day of hourly runs (`--now`
advancing) pi_event_frames equals one fresh full read of the server, row for row.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from osipi_connector import PILakeflowConnector
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import EVENT_FRAMES
from osipi_connector.piwebapi.pitime import format_datetime
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.server import running_simulator
from tests.conftest import FIXED_NOW
from tests.extract.test_runner import content

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # ~25 s: 25 simulated hours
DB_PATH = "\\\\PISIM-AF\\Plant"
RUNS = 25


def frames_config(url: str, root: Path, **extraction: object) -> dict:
    return {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {
            "tag_names": ["unused"],
            "af_database": DB_PATH,
            "mode": "incremental",
            "start_date": format_datetime(FIXED_NOW),
            "lookback": "10m",
            **extraction,
        },
        "local": {"lakehouse_root": str(root)},
    }


def hourly_runs(tmp_path: Path, sim: SimConfig, **extraction: object) -> DeltaSink:
    sink = DeltaSink(tmp_path / "hourly")
    for hour in range(1, RUNS + 1):
        sim.now = FIXED_NOW + timedelta(hours=hour)
        with running_simulator(sim) as server:
            result = PILakeflowConnector(frames_config(server.url, sink.root, **extraction), sink=sink).run(
                datasets=["event_frames"]
            )
            assert result.status == "success", result.errors
    return sink


def fresh_read(tmp_path: Path, sim: SimConfig) -> DeltaSink:
    reference = DeltaSink(tmp_path / "full")
    with running_simulator(sim) as server:
        cfg = frames_config(server.url, reference.root, mode="full", end_date=format_datetime(sim.now))
        assert PILakeflowConnector(cfg, sink=reference).run(datasets=["event_frames"]).status == "success"
    return reference


def test_a_day_of_hourly_runs_ends_equal_to_a_fresh_read_acknowledgements_included(tmp_path: Path) -> None:
    # No late point data: the simulator computes a closed frame's attribute values from its points at read time,
    # where PI serves the values it captured when the frame closed (AreValuesCaptured); late point values
    # would change them in the simulator only.
    sim = SimConfig(seed=5, tags=50, now=FIXED_NOW, rate_limit_max_requests=0, late_share=0.0, edit_share=0.0)
    sink = hourly_runs(tmp_path, sim)
    reference = fresh_read(tmp_path, sim)

    rows = content(reference, EVENT_FRAMES)
    late = [r for r in rows if r["is_acknowledged"] and r["acknowledged_date"] - r["end_time"] > timedelta(minutes=10)]
    assert len(rows) > 40
    assert len(late) > 5, "the scenario has acknowledgements that come after the frame left the lookback"
    assert content(sink, EVENT_FRAMES) == rows
