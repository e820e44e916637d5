"""fetch_event_frames against the simulator over HTTP: the frames PI finds, open frames with a null end,
attribute values as PI serves them, and a frame that closes later updated in place by the MERGE."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from osipi_connector.extract import event_frames
from osipi_connector.extract.event_frames import fetch_event_frames
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import EVENT_FRAMES
from osipi_connector.piwebapi.pitime import parse_iso
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.server import running_simulator
from tests.conftest import FIXED_NOW
from tests.extract.conftest import make_client
from tests.simulator.helpers import get_json

DB_PATH = "\\\\PISIM-AF\\Plant"


def frames(client, start, end, run_id="r1"):
    return fetch_event_frames(client, af_database=DB_PATH, start=start, end=end, run_id=run_id, ingested_at=FIXED_NOW)


WINDOW = (FIXED_NOW - timedelta(days=4), FIXED_NOW)


@pytest.fixture(scope="module")
def frames_4d(pi_client):
    """Four days (about 190 frames) read in pages of 50, so paging is exercised without a slow test."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(event_frames, "PAGE", 50)
        return frames(pi_client, *WINDOW)


def served_frames(http, base, start, end):
    db = get_json(http, f"{base}/assetdatabases", path=DB_PATH)
    params = {"startTime": start.isoformat(), "endTime": end.isoformat(), "maxCount": 100_000}
    return get_json(http, db["Links"]["EventFrames"], searchMode="Overlapped", **params)["Items"]


def test_every_overlapping_frame_lands_once_across_pages(frames_4d, simulator, http):
    served = served_frames(http, simulator.url, *WINDOW)
    assert len(served) > 3 * 50
    assert frames_4d.schema == EVENT_FRAMES.schema
    ids = frames_4d.column("event_frame_id").to_pylist()
    assert len(ids) == len(set(ids))
    assert sorted(ids) == sorted(f["Id"] for f in served)


def test_frame_fields_equal_what_pi_serves(frames_4d, simulator, http):
    served = {f["Id"]: f for f in served_frames(http, simulator.url, *WINDOW)}
    acknowledged = 0
    for row in frames_4d.to_pylist():
        f = served[row["event_frame_id"]]
        assert (row["event_name"], row["template_name"], row["severity"]) == (
            f["Name"],
            f["TemplateName"],
            f["Severity"],
        )
        assert row["start_time"] == parse_iso(f["StartTime"])
        assert row["referenced_element_webids"] == f["RefElementWebIds"]
        assert row["primary_element_webid"] == f["RefElementWebIds"][0]  # the simulator's primary comes first
        assert row["is_acknowledged"] == f["IsAcknowledged"]
        if f["IsAcknowledged"]:
            acknowledged += 1
            assert row["acknowledged_date"] == parse_iso(f["AcknowledgedDate"])
            assert row["acknowledged_by"] == f["AcknowledgedBy"]
        else:
            assert row["acknowledged_date"] is None  # PI's 1970-01-01 "never"
        if f["EndTime"].startswith("9999"):
            assert row["end_time"] is None
            assert row["is_in_progress"]
        else:
            assert row["end_time"] == parse_iso(f["EndTime"])
            assert not row["is_in_progress"]
    assert acknowledged > 0


def test_attributes_hold_the_values_pi_serves_at_the_frame_end(frames_4d, simulator, http):
    rows = frames_4d.to_pylist()
    sample = [r for r in rows if not r["is_in_progress"]][:3] + [r for r in rows if r["is_in_progress"]][:2]
    assert len(sample) == 5
    for row in sample:
        attributes = json.loads(row["attributes"])
        served = get_json(http, f"{simulator.url}/eventframes/{row['event_frame_webid']}/attributes")["Items"]
        assert set(attributes) == {a["Name"] for a in served}
        for a in served:
            params = {"time": row["end_time"].isoformat()} if row["end_time"] else {}
            value = get_json(http, f"{simulator.url}/streams/{a['WebId']}/value", **params)["Value"]
            assert attributes[a["Name"]] == (value["Name"] if isinstance(value, dict) else value)


def test_a_frame_open_at_one_run_is_closed_by_the_next_not_duplicated(tmp_path, http):
    later = FIXED_NOW + timedelta(hours=12)  # longer than any frame lasts: every open frame has closed
    sink = DeltaSink(tmp_path)
    sink.ensure(EVENT_FRAMES)
    with running_simulator(SimConfig(seed=7, tags=500, now=FIXED_NOW)) as sim, make_client(sim.url) as client:
        first = frames(client, FIXED_NOW - timedelta(days=1), FIXED_NOW)
    sink.merge(EVENT_FRAMES, first)
    open_ids = {r["event_frame_id"] for r in first.to_pylist() if r["is_in_progress"]}
    assert open_ids
    with running_simulator(SimConfig(seed=7, tags=500, now=later)) as sim, make_client(sim.url) as client:
        second = frames(client, FIXED_NOW - timedelta(hours=2), later, run_id="r2")
        served = {f["Id"]: f for f in served_frames(http, sim.url, FIXED_NOW, later)}
    sink.merge(EVENT_FRAMES, second)
    stored = sink.read(EVENT_FRAMES).to_pylist()
    ids = [r["event_frame_id"] for r in stored]
    assert len(ids) == len(set(ids))
    assert set(ids) == {r["event_frame_id"] for r in first.to_pylist()} | set(
        second.column("event_frame_id").to_pylist()
    )
    for row in (r for r in stored if r["event_frame_id"] in open_ids):
        assert not row["is_in_progress"]
        assert row["end_time"] == parse_iso(served[row["event_frame_id"]]["EndTime"])
        assert row["start_time"] < row["end_time"] <= later
        assert row["run_id"] == "r2"


def test_an_empty_window_gives_an_empty_table(pi_client):
    old = datetime(2000, 1, 1, tzinfo=timezone.utc)  # before the simulator's history
    table = frames(pi_client, old, old + timedelta(hours=1))
    assert table.num_rows == 0
    assert table.schema == EVENT_FRAMES.schema
