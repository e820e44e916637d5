"""Recorded values and the traps real connectors fall into, against the running simulator."""

from __future__ import annotations

from datetime import timedelta

import orjson
import pytest
import requests

from osipi_connector.piwebapi.pitime import format_datetime, parse_pi_timestamp_ticks
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.core import Simulator
from osipi_connector.simulator.http import Request
from tests.conftest import FIXED_NOW
from tests.simulator.helpers import all_points, first_of_type, get_json

DAY = "*-1d"


def recorded(http, base, web_id, expect=200, **params):
    return get_json(http, f"{base}/streams/{web_id}/recorded", expect=expect, **params)


@pytest.fixture(scope="module")
def points(simulator):
    with requests.Session() as session:
        return all_points(session, simulator.url)


def busiest_float(points):
    return next(p for p in points if p["PointType"] == "Float32")


def test_timed_value_shape(simulator, http, points):
    point = busiest_float(points)
    body = recorded(http, simulator.url, point["WebId"], startTime="*-2h", maxCount=5)
    assert set(body) == {"Links", "Items", "UnitsAbbreviation"}
    item = body["Items"][0]
    assert list(item) == ["Timestamp", "Value", "UnitsAbbreviation", "Good", "Questionable", "Substituted", "Annotated"]
    assert item["UnitsAbbreviation"] == point["EngineeringUnits"]
    assert isinstance(item["Value"], float)


def test_default_max_count_truncates_silently_at_1000(simulator, http, points):
    point = busiest_float(points)
    full = recorded(http, simulator.url, point["WebId"], startTime="*-30d", maxCount=150_000)["Items"]
    assert len(full) > 1000
    default = recorded(http, simulator.url, point["WebId"], startTime="*-30d")
    assert "Errors" not in default
    assert default["Items"] == full[:1000]


def test_max_count_above_server_cap_is_400(simulator, http, points):
    body = recorded(http, simulator.url, points[0]["WebId"], expect=400, maxCount=150_001)
    assert "maxCount" in body["Errors"][0]


def test_window_inside_bounds_and_order(simulator, http, points):
    point = busiest_float(points)
    start, end = FIXED_NOW - timedelta(hours=6), FIXED_NOW - timedelta(hours=5)
    items = recorded(
        http,
        simulator.url,
        point["WebId"],
        startTime=format_datetime(start),
        endTime=format_datetime(end),
        maxCount=10_000,
    )["Items"]
    ticks = [parse_pi_timestamp_ticks(i["Timestamp"]) for i in items]
    assert items
    assert ticks == sorted(ticks)
    lo, hi = parse_pi_timestamp_ticks(format_datetime(start)), parse_pi_timestamp_ticks(format_datetime(end))
    assert all(lo <= t <= hi for t in ticks)
    descending = recorded(
        http,
        simulator.url,
        point["WebId"],
        startTime=format_datetime(end),
        endTime=format_datetime(start),
        maxCount=10_000,
    )["Items"]
    assert descending == items[::-1]


def test_pi_time_strings(simulator, http, points):
    point = busiest_float(points)
    relative = recorded(http, simulator.url, point["WebId"], startTime="y", endTime="t", maxCount=100_000)["Items"]
    absolute = recorded(
        http,
        simulator.url,
        point["WebId"],
        startTime="2025-02-28T00:00:00Z",
        endTime="2025-03-01T00:00:00Z",
        maxCount=100_000,
    )["Items"]
    assert relative == absolute
    assert relative
    bad = recorded(http, simulator.url, point["WebId"], expect=400, startTime="yesterday-ish")
    assert "yesterday-ish" in bad["Errors"][0]


def test_paging_by_time_reproduces_the_window_exactly(simulator, http, points):
    """kukur-style paging (restart at the last timestamp, drop its trailing run) loses nothing."""
    web_id = busiest_float(points)["WebId"]
    window = {"startTime": "*-3d", "endTime": "*"}
    full = recorded(http, simulator.url, web_id, maxCount=150_000, **window)["Items"]
    start, got = window["startTime"], []
    for _ in range(10_000):
        page = recorded(http, simulator.url, web_id, startTime=start, endTime="*", maxCount=97)["Items"]
        if len(page) < 97:
            got += page
            break
        last = page[-1]["Timestamp"]
        keep = [v for v in page if v["Timestamp"] != last]
        assert keep, "more than maxCount values at one timestamp"
        got += keep
        start = last
    assert got == full


def test_duplicate_timestamps_and_subsecond_fractions_exist(simulator, http, points):
    floats = [p for p in points if p["PointType"] in ("Float32", "Float64")][:40]
    dup_found = fraction_found = False
    for point in floats:
        items = recorded(http, simulator.url, point["WebId"], startTime="*-2d", maxCount=150_000)["Items"]
        stamps = [i["Timestamp"] for i in items]
        dup_found |= len(stamps) != len(set(stamps))
        fraction_found |= any("." in s for s in stamps)
        if dup_found and fraction_found:
            break
    assert dup_found
    assert fraction_found


def test_digital_string_and_system_states(simulator, http):
    digital = first_of_type(http, simulator.url, "Digital")
    items = recorded(http, simulator.url, digital["WebId"], startTime="*-30d", maxCount=5000)["Items"]
    states = [i["Value"] for i in items if i["Good"]]
    assert states
    assert all(set(v) == {"Name", "Value", "IsSystem"} and v["IsSystem"] is False for v in states)
    string = first_of_type(http, simulator.url, "String")
    values = recorded(http, simulator.url, string["WebId"], startTime="*-30d", maxCount=5000)["Items"]
    assert any(isinstance(v["Value"], str) for v in values)
    created = recorded(http, simulator.url, string["WebId"], startTime="2023-01-01", endTime="*", maxCount=1)["Items"][
        0
    ]
    assert created["Value"] == {"Name": "Pt Created", "Value": 253, "IsSystem": True}
    assert created["Good"] is False


def test_bad_values_are_flagged_not_good(simulator, http, points):
    bad = []
    for point in points[:30]:
        items = recorded(http, simulator.url, point["WebId"], startTime="*-20d", maxCount=150_000)["Items"]
        bad += [i for i in items if not i["Good"]]
        if any(i["Value"]["Name"] == "I/O Timeout" for i in bad):
            break
    assert any(i["Value"]["Name"] == "I/O Timeout" and i["Value"]["IsSystem"] for i in bad)


def test_selected_fields(simulator, http, points):
    body = recorded(
        http,
        simulator.url,
        points[0]["WebId"],
        startTime="*-1d",
        maxCount=3,
        selectedFields="Items.Timestamp;Items.Good",
    )
    assert set(body) == {"Items"}
    assert all(set(i) == {"Timestamp", "Good"} for i in body["Items"])


def test_boundary_types(simulator, http, points):
    point = busiest_float(points)
    window = {"startTime": "*-6h", "endTime": "*-5h", "maxCount": 10_000}
    inside = recorded(http, simulator.url, point["WebId"], **window)["Items"]
    outside = recorded(http, simulator.url, point["WebId"], boundaryType="Outside", **window)["Items"]
    assert outside[1:-1] == inside
    assert outside[0]["Timestamp"] < inside[0]["Timestamp"]
    assert outside[-1]["Timestamp"] > inside[-1]["Timestamp"]
    interpolated = recorded(http, simulator.url, point["WebId"], boundaryType="Interpolated", **window)["Items"]
    assert interpolated[0]["Timestamp"] == "2025-03-01T06:00:00Z"
    assert interpolated[-1]["Timestamp"] == "2025-03-01T07:00:00Z"
    assert recorded(http, simulator.url, point["WebId"], expect=400, boundaryType="Sideways")["Errors"]


def test_value_end_and_recorded_at_time(simulator, http, points):
    point = busiest_float(points)
    last = recorded(http, simulator.url, point["WebId"], startTime="*", endTime="*-1h", maxCount=1)["Items"][0]
    assert get_json(http, f"{simulator.url}/streams/{point['WebId']}/value") == last
    assert get_json(http, f"{simulator.url}/streams/{point['WebId']}/end") == last
    at = get_json(
        http, f"{simulator.url}/streams/{point['WebId']}/recordedattime", time=last["Timestamp"], retrievalMode="Exact"
    )
    assert at == last


def test_summary_count_matches_recorded(simulator, http, points):
    point = busiest_float(points)
    items = recorded(http, simulator.url, point["WebId"], startTime="*-1d", endTime="*", maxCount=150_000)["Items"]
    summary = get_json(
        http, f"{simulator.url}/streams/{point['WebId']}/summary", startTime="*-1d", endTime="*", summaryType="Count"
    )
    assert summary["Items"][0]["Value"]["Value"] == len(items)


def test_streamset_recorded_matches_single_streams(simulator, http, points):
    chosen = points[:5]
    body = get_json(
        http,
        f"{simulator.url}/streamsets/recorded",
        webId=[p["WebId"] for p in chosen],
        startTime="*-2h",
        maxCount=50,
    )
    assert [s["WebId"] for s in body["Items"]] == [p["WebId"] for p in chosen]
    for stream, point in zip(body["Items"], chosen):
        assert stream["Name"] == point["Name"]
        assert stream["Items"] == recorded(http, simulator.url, point["WebId"], startTime="*-2h", maxCount=50)["Items"]
    missing = get_json(http, f"{simulator.url}/streamsets/recorded", expect=400)
    assert missing["Errors"]


def test_same_seed_same_bytes_in_any_order():
    """Two simulators, calls in opposite orders, byte-identical answers."""
    config = SimConfig(seed=11, tags=50, now=FIXED_NOW)
    a, b = Simulator(config), Simulator(SimConfig(seed=11, tags=50, now=FIXED_NOW))
    urls = [f"/streams/{a.points.webid(i)}/recorded?startTime=*-3d&maxCount=5000" for i in range(0, 50, 7)]
    urls += ["/dataservers", f"/dataservers/{a.points.server_webid}/points?maxCount=50"]
    first = {u: a.handle(Request.from_url("GET", u, "http://h/piwebapi")).encode() for u in urls}
    second = {u: b.handle(Request.from_url("GET", u, "http://h/piwebapi")).encode() for u in reversed(urls)}
    assert first == second
    other = Simulator(SimConfig(seed=12, tags=50, now=FIXED_NOW))
    assert other.handle(Request.from_url("GET", urls[0], "http://h/piwebapi")).encode() != first[urls[0]]


def _values(sim: Simulator, index: int, start: str, end: str) -> list[dict]:
    url = f"/streams/{sim.points.webid(index)}/recorded?startTime={start}&endTime={end}&maxCount=150000"
    return orjson.loads(sim.handle(Request.from_url("GET", url, "http://h/piwebapi")).encode())["Items"]


def test_late_data_appears_after_its_delay():
    """A late tag's recent window grows when the clock moves on: a re-read window catches it."""
    earlier = Simulator(SimConfig(seed=5, tags=200, now=FIXED_NOW, late_share=1.0))
    later = Simulator(SimConfig(seed=5, tags=200, now=FIXED_NOW + timedelta(hours=1), late_share=1.0))
    window = ("2025-03-01T11:00:00Z", "2025-03-01T12:00:00Z")
    grown = 0
    for index in range(20):
        before, after = _values(earlier, index, *window), _values(later, index, *window)
        assert {v["Timestamp"] for v in before} <= {v["Timestamp"] for v in after}
        grown += len(after) > len(before)
    assert grown > 0


def test_on_time_tags_do_not_change_when_the_clock_moves():
    earlier = Simulator(SimConfig(seed=5, tags=50, now=FIXED_NOW, late_share=0.0, edit_share=0.0))
    later = Simulator(SimConfig(seed=5, tags=50, now=FIXED_NOW + timedelta(days=2), late_share=0.0, edit_share=0.0))
    window = ("2025-02-27T00:00:00Z", "2025-03-01T12:00:00Z")
    for index in range(10):
        assert _values(earlier, index, *window) == _values(later, index, *window)


def test_edits_change_values_and_flag_substituted():
    window = ("2025-03-01T09:00:00Z", "2025-03-01T12:00:00Z")
    config = {"seed": 9, "tags": 50, "late_share": 0.0, "edit_share": 0.2, "edit_delay_s": 3600.0}
    earlier = Simulator(SimConfig(now=FIXED_NOW, **config))
    later = Simulator(SimConfig(now=FIXED_NOW + timedelta(hours=2), **config))
    edited = 0
    for index in range(10):
        before, after = _values(earlier, index, *window), _values(later, index, *window)
        assert [v["Timestamp"] for v in before] == [v["Timestamp"] for v in after]
        for old, new in zip(before, after):
            if old != new:
                assert new["Substituted"] is True
                assert old["Substituted"] is False
                edited += 1
    assert edited > 0


def test_large_answers_stream_the_same_bytes(simulator, http, points):
    """Answers above one chunk go out with chunked transfer encoding; the bytes equal the in-process answer."""
    web_id = busiest_float(points)["WebId"]
    url = f"/streams/{web_id}/recorded?startTime=2023-06-01&maxCount=150000"
    response = http.get(simulator.url + url)
    assert response.headers.get("Transfer-Encoding") == "chunked"
    expected = simulator.sim.handle(Request.from_url("GET", url, simulator.url)).encode()
    assert response.content == expected
    assert len(orjson.loads(response.content)["Items"]) > 20_000
