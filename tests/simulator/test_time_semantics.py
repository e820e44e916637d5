"""PI time semantics the real server has and a connector may rely on.

* A bare offset is relative to the other end of the range (AF SDK `AFTimeRange(String, String)`,
  https://docs.aveva.com/bundle/af-sdk/page/html/M_OSIsoft_AF_Time_AFTimeRange__ctor_1.htm, the parser
  behind PI Web API's "Time Strings", https://docs.aveva.com/bundle/pi-web-api-reference/page/help/topics/time-strings.html).
* `*` is the current time, one instant for the whole request (a 1-day range cut into 6 h summaries is
  4 intervals, never a fifth sliver).
* Timestamps are served with 100-ns precision (up to 7 fraction digits, Stream GetRecorded sample,
  https://docs.aveva.com/bundle/pi-web-api-reference/page/help/controllers/stream/actions/getrecorded.html)
  and the same text sent back names the same instant (Stream GetRecordedAtTime, `retrievalMode=Exact`).
"""

from __future__ import annotations

import dataclasses

import pytest

from osipi_connector.simulator.core import Simulator
from osipi_connector.simulator.http import Request
from tests.simulator.helpers import get_json

END = "2025-03-01T10:00:00Z"


def recorded(http, simulator, web_id, **params) -> list[dict]:
    return get_json(http, f"{simulator.url}/streams/{web_id}/recorded", **params)["Items"]


@pytest.fixture(scope="module")
def busy_point(simulator) -> dict:
    """A Float32 point with values every few seconds."""
    import requests

    with requests.Session() as http:
        points = get_json(http, f"{simulator.url}/dataservers")["Items"][0]["Links"]["Points"]
        items = get_json(http, points, maxCount=500)["Items"]
    sim = simulator.sim
    return next(
        p for p in items if p["PointType"] == "Float32" and sim.points.point(p["Id"] - 1).interval_ticks <= 50_000_000
    )


def test_bare_start_offset_is_relative_to_the_end_time(simulator, http, busy_point):
    relative = recorded(http, simulator, busy_point["WebId"], startTime="-1h", endTime=END)
    absolute = recorded(http, simulator, busy_point["WebId"], startTime="2025-03-01T09:00:00Z", endTime=END)
    assert relative == absolute
    assert len(relative) > 10


def test_bare_end_offset_is_relative_to_the_start_time(simulator, http, busy_point):
    relative = recorded(http, simulator, busy_point["WebId"], startTime="2025-03-01T09:00:00Z", endTime="+30m")
    absolute = recorded(
        http, simulator, busy_point["WebId"], startTime="2025-03-01T09:00:00Z", endTime="2025-03-01T09:30:00Z"
    )
    assert relative == absolute
    assert relative[-1]["Timestamp"] <= "2025-03-01T09:30:00Z"


def test_star_with_an_offset_is_still_relative_to_now(simulator, http, busy_point):
    """`*-1h` has a base, so the AFTimeRange rule does not apply: relative to the request's now (12:00)."""
    items = recorded(http, simulator, busy_point["WebId"], startTime="*-1h", endTime=END)
    assert items
    assert items[0]["Timestamp"] >= "2025-03-01T10:00:00Z"


def test_star_is_one_instant_per_request(sim_config):
    """With the wall clock running, `*-1d`..`*` in 6 h summaries is exactly 4 intervals ending at `*`."""
    sim = Simulator(dataclasses.replace(sim_config, now=None, tags=50))
    web_id = sim.points.webid(0)
    url = f"/streams/{web_id}/summary?startTime=*-1d&endTime=*&summaryDuration=6h&summaryType=Count"
    for _ in range(20):
        response = sim.handle(Request.from_url("GET", url, base_url="http://127.0.0.1/piwebapi"))
        assert response.status == 200, response.body
        assert len(response.body["Items"]) == 4


def test_seven_digit_timestamps_round_trip(simulator, http):
    """A served 100-ns timestamp, sent back, is that instant: Exact finds it and [t, t] returns it."""
    sim = simulator.sim
    index = next(i for i in range(sim.points.count) if sim.points.point(i).subsecond)
    web_id = sim.points.webid(index)
    items = recorded(http, simulator, web_id, startTime="2025-03-01T11:00:00Z", endTime="*", maxCount=200)
    seven = [v for v in items if len(v["Timestamp"].split(".")[-1]) == 8]  # 7 digits and "Z"
    assert seven, "the point serves 100-ns timestamps"
    for value in seven[:5]:
        t = value["Timestamp"]
        exact = get_json(http, f"{simulator.url}/streams/{web_id}/recordedattime", time=t, retrievalMode="Exact")
        assert exact["Timestamp"] == t
        assert exact["Value"] == value["Value"]
        assert recorded(http, simulator, web_id, startTime=t, endTime=t) == [value]


def test_seven_digit_start_excludes_the_value_100ns_earlier(simulator, http):
    sim = simulator.sim
    index = next(i for i in range(sim.points.count) if sim.points.point(i).subsecond)
    web_id = sim.points.webid(index)
    items = recorded(http, simulator, web_id, startTime="2025-03-01T11:00:00Z", endTime="*", maxCount=200)
    t = next(v["Timestamp"] for v in items if len(v["Timestamp"].split(".")[-1]) == 8 and v["Timestamp"][-2] != "9")
    later = t[:-2] + str(int(t[-2]) + 1) + "Z"  # 100 ns after the value
    assert recorded(http, simulator, web_id, startTime=later, endTime=later) == []
    get_json(http, f"{simulator.url}/streams/{web_id}/recordedattime", expect=404, time=later, retrievalMode="Exact")


def test_summary_of_one_stream_takes_the_same_time_range(simulator, http, busy_point):
    base = f"{simulator.url}/streams/{busy_point['WebId']}/summary"
    relative = get_json(http, base, startTime="-2h", endTime=END, summaryType="Count", summaryDuration="1h")
    absolute = get_json(
        http, base, startTime="2025-03-01T08:00:00Z", endTime=END, summaryType="Count", summaryDuration="1h"
    )
    assert relative == absolute
    assert len(relative["Items"]) == 2
