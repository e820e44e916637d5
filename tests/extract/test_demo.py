"""`make demo` end to end (a smaller slice): the simulator starts, the tables land, the queries print."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from osipi_connector.demo import DEMO_TABLES
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import TIMESERIES
from osipi_connector.simulator.points import DEFAULT_POINTS

REPO = Path(__file__).resolve().parents[2]
TAGS = 8  # a small slice: the demo default is 200


@pytest.mark.slow
@pytest.mark.integration
def test_demo_lands_every_table_and_prints_the_checks(tmp_path):
    root = tmp_path / "lakehouse"
    env = {**os.environ, "OSIPI_DEMO_LAKEHOUSE": str(root)}  # the output-dir override the Makefile leaves alone
    result = subprocess.run(
        [sys.executable, "-m", "osipi_connector.demo", "--tags", str(TAGS)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "full extraction success" in result.stdout
    for title in ("Rows per table", "AF elements per depth", "Event frames still in progress", "Watermarks"):
        assert f"== {title}" in result.stdout
    sink = DeltaSink(root)
    counts = {f"{sink.location.schema_for(spec)}.{spec.name}": sink.read(spec).num_rows for spec in DEMO_TABLES}
    assert all(n > 0 for n in counts.values()), counts
    tags = TAGS + len(DEFAULT_POINTS)  # the generated tags and PI's default points (SINUSOID...)
    assert counts["bronze.pi_tags"] == tags
    # every tag for timeseries, interpolated and summary, and the event frames and annotations of the AF database
    assert counts["checkpoints.pi_watermarks"] == 3 * tags + 2
    printed = {}
    for line in result.stdout.splitlines():
        cells = [cell.strip() for cell in line.strip("| ").split(" | ")]
        if len(cells) == 2 and cells[0] in counts:
            printed[cells[0]] = int(cells[1])
    assert printed == counts  # the printed counts are what the tables hold
    stamps = sink.read(TIMESERIES, ["timestamp"]).column("timestamp").to_pylist()
    assert max(stamps) - min(stamps) > timedelta(hours=23)  # a whole day was extracted
