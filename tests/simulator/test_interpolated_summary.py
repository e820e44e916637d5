"""`/streams/{id}/interpolated` and `/streams/{id}/summary`: grids, bases, intervals, time zones, errors.

Expected values are derived from what the simulator serves on `/recorded` for the same window.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import requests

from osipi_connector.piwebapi.pitime import format_datetime, parse_pi_timestamp_ticks
from tests.simulator.helpers import all_points, get_json

START = datetime(2025, 3, 1, 10, 0, tzinfo=timezone.utc)
END = datetime(2025, 3, 1, 11, 0, tzinfo=timezone.utc)
WINDOW = {"startTime": format_datetime(START), "endTime": format_datetime(END)}


@pytest.fixture(scope="module")
def points(simulator):
    with requests.Session() as session:
        return all_points(session, simulator.url)


def of_type(points, point_type):
    return next(p for p in points if p["PointType"] == point_type)


def stream(http, point, action, expect=200, **params):
    return get_json(http, point["Links"]["Self"].replace("/points/", "/streams/") + f"/{action}", expect, **params)


def recorded_items(http, point, **window):
    return stream(http, point, "recorded", maxCount=150_000, **(window or WINDOW))["Items"]


# --- interpolated --------------------------------------------------------------------------------------


def test_interpolated_grid_and_shape(simulator, http, points):
    point = of_type(points, "Float32")
    body = stream(http, point, "interpolated", interval="10m", **WINDOW)
    assert set(body) == {"Links", "Items", "UnitsAbbreviation"}
    stamps = [item["Timestamp"] for item in body["Items"]]
    assert stamps == [format_datetime(START + timedelta(minutes=10 * i)) for i in range(7)]  # end included
    assert list(body["Items"][0]) == list(recorded_items(http, point)[0])  # the TimedValue members
    backwards = stream(
        http, point, "interpolated", interval="10m", startTime=WINDOW["endTime"], endTime=WINDOW["startTime"]
    )
    assert backwards["Items"] == body["Items"][::-1]


def test_interpolated_values_lie_on_the_recorded_signal(simulator, http, points):
    """Linear between the neighbouring recorded values (Float), the previous value (Int32, Digital)."""
    for point_type in ("Float64", "Int32", "Digital"):
        point = of_type(points, point_type)
        events = [i for i in recorded_items(http, point, startTime="01-Mar-25 09:00:00", endTime="*") if i["Good"]]
        ticks = np.array([parse_pi_timestamp_ticks(i["Timestamp"]) for i in events])
        grid = stream(http, point, "interpolated", interval="7m", timeZone="UTC", **WINDOW)["Items"]
        for item in grid:
            t = parse_pi_timestamp_ticks(item["Timestamp"])
            i = int(np.searchsorted(ticks, t, side="right")) - 1
            before, after = events[i], events[i + 1]
            if point_type != "Float64" or ticks[i] == t:
                assert item["Value"] == before["Value"], (point_type, item)
            else:
                share = (t - ticks[i]) / (ticks[i + 1] - ticks[i])
                expected = before["Value"] + (after["Value"] - before["Value"]) * share
                assert item["Value"] == pytest.approx(expected, abs=1e-6)


def test_interpolated_before_history_is_no_data(simulator, http, points):
    point = points[0]
    items = stream(http, point, "interpolated", startTime="2023-01-01T00:00:00Z", endTime="2023-01-01T01:00:00Z")[
        "Items"
    ]
    assert len(items) == 2
    assert all(i["Value"] == {"Name": "No Data", "Value": 248, "IsSystem": True} and not i["Good"] for i in items)


def test_time_zone_parameter(simulator, http, points):
    point = of_type(points, "Float32")
    oslo = stream(
        http,
        point,
        "interpolated",
        interval="1h",
        startTime="01-Mar-25 11:00:00",
        endTime="01-Mar-25 12:00:00",
        timeZone="Europe/Oslo",
    )
    assert [i["Timestamp"] for i in oslo["Items"]] == ["2025-03-01T10:00:00Z", "2025-03-01T11:00:00Z"]
    error = stream(http, point, "interpolated", expect=400, timeZone="Mars/Olympus")
    assert "Mars/Olympus" in error["Errors"][0]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"interval": "often"}, "Cannot parse time span 'often'"),
        ({"interval": "1mo"}, "no fixed length"),
        ({"interval": "0s"}, "longer than zero"),
        ({"interval": "1s", "startTime": "*-3d"}, "more than the maximum allowed (150000)"),
        ({"startTime": "32-Jan-25"}, "not a valid date"),
    ],
)
def test_interpolated_errors(simulator, http, points, params, message):
    error = stream(http, points[0], "interpolated", expect=400, **params)
    assert message in error["Errors"][0]


# --- summary ---------------------------------------------------------------------------------------------


def summary(http, point, **params):
    return [item["Value"] for item in stream(http, point, "summary", **params)["Items"]]


def test_event_weighted_statistics_equal_the_recorded_values(simulator, http, points):
    point = of_type(points, "Float64")
    values = np.array([i["Value"] for i in recorded_items(http, point) if i["Good"]])
    kinds = ("Average", "Minimum", "Maximum", "Range", "StdDev", "PopulationStdDev", "Total")
    got = summary(http, point, calculationBasis="EventWeighted", summaryType=list(kinds), **WINDOW)
    expected = [
        values.mean(),
        values.min(),
        values.max(),
        np.ptp(values),
        values.std(ddof=1),
        values.std(),
        values.sum(),
    ]
    assert [g["Value"] for g in got] == pytest.approx(expected, rel=1e-12)


def test_summary_duration_splits_the_window(simulator, http, points):
    point = of_type(points, "Float32")
    items = recorded_items(http, point)
    counts = summary(http, point, summaryType="Count", summaryDuration="15m", **WINDOW)
    assert [c["Timestamp"] for c in counts] == [format_datetime(START + timedelta(minutes=15 * i)) for i in range(4)]
    assert sum(c["Value"] for c in counts) == len(items)
    whole = summary(http, point, summaryType="Average", **WINDOW)[0]["Value"]
    quarters = summary(http, point, summaryType="Average", summaryDuration="15m", **WINDOW)
    assert np.mean([q["Value"] for q in quarters]) == pytest.approx(whole, rel=1e-9)  # time-weighted: equal weights


def test_time_weighted_total_is_the_average_per_day(simulator, http, points):
    point = of_type(points, "Float64")
    average, total = summary(http, point, summaryType=["Average", "Total"], **WINDOW)
    assert total["Value"] == pytest.approx(average["Value"] * (END - START) / timedelta(days=1), rel=1e-12)


def test_time_weighted_average_of_a_step_point(simulator, http, points):
    """Int32 points hold each value until the next event: the average is the duration-weighted mean."""
    point = of_type(points, "Int32")
    events = recorded_items(http, point, startTime="01-Mar-25 09:00:00", endTime=WINDOW["endTime"])
    start, end = parse_pi_timestamp_ticks(WINDOW["startTime"]), parse_pi_timestamp_ticks(WINDOW["endTime"])
    changes = [(max(parse_pi_timestamp_ticks(i["Timestamp"]), start), i) for i in events]
    weighted = total = 0.0
    for (t, item), (t_next, _) in zip(changes, [*changes[1:], (end, None)], strict=True):
        if item["Good"]:  # a bad value makes the time until the next event bad
            weighted += item["Value"] * (t_next - t)
            total += t_next - t
    got = summary(http, point, summaryType="Average", **WINDOW)[0]
    assert got["Value"] == pytest.approx(weighted / total, rel=1e-9)
    assert got["Timestamp"] == WINDOW["startTime"]


def test_time_types_and_extreme_timestamps(simulator, http, points):
    point = of_type(points, "Float32")
    auto = summary(http, point, summaryType="Maximum", **WINDOW)[0]
    grid = stream(http, point, "interpolated", interval="1s", startTime=auto["Timestamp"], endTime=auto["Timestamp"])
    assert grid["Items"][0]["Value"] == auto["Value"]  # Auto: stamped when the maximum occurred
    earliest = summary(http, point, summaryType="Maximum", timeType="EarliestTime", **WINDOW)[0]
    latest = summary(http, point, summaryType="Maximum", timeType="MostRecentTime", **WINDOW)[0]
    assert (earliest["Timestamp"], latest["Timestamp"]) == (WINDOW["startTime"], WINDOW["endTime"])


@pytest.mark.parametrize(
    ("point_type", "params", "message"),
    [
        ("Float32", {"summaryType": "Median"}, "not valid for summaryType"),
        ("Float32", {"calculationBasis": "Magic"}, "not valid for calculationBasis"),
        ("Float32", {"summaryDuration": "soon"}, "Cannot parse time span 'soon'"),
    ],
)
def test_summary_errors(simulator, http, points, point_type, params, message):
    error = stream(http, of_type(points, point_type), "summary", expect=400, **params)
    assert message in error["Errors"][0]


@pytest.mark.parametrize("point_type", ["Digital", "String"])
def test_numeric_summaries_of_a_non_numeric_point_are_per_value_errors(simulator, http, points, point_type):
    """Count is the only summary type of non-numeric streams (Stream GetSummary,
    https://docs.aveva.com/bundle/pi-web-api-reference/page/help/controllers/stream/actions/getsummary.html);
    the others answer a value holding `Errors`, as the stream set does, and the request still succeeds."""
    point = of_type(points, point_type)
    params = {"summaryType": ["Average", "Count", "PercentGood"], **WINDOW}
    items = stream(http, point, "summary", **params)["Items"]
    assert [i["Type"] for i in items] == ["Average", "Count", "PercentGood"]
    assert "needs a numeric point" in items[0]["Value"]["Errors"][0]
    assert "needs a numeric point" in items[2]["Value"]["Errors"][0]
    assert items[1]["Value"]["Good"]
    assert items[1]["Value"]["Value"] >= 0
    adhoc = get_json(http, f"{simulator.url}/streamsets/summary", webId=point["WebId"], **params)
    assert adhoc["Items"][0]["Items"] == items


# --- interpolated at times, stream sets ------------------------------------------------------------------


def test_interpolated_at_times_equal_the_grid(simulator, http, points):
    point = of_type(points, "Float64")
    grid = stream(http, point, "interpolated", interval="10m", **WINDOW)["Items"]
    picked = [grid[5]["Timestamp"], grid[1]["Timestamp"], "01-Mar-25 10:30:00"]  # any order, any time form
    at = stream(http, point, "interpolatedattimes", time=picked)["Items"]
    assert at == [grid[1], grid[3], grid[5]]  # ascending by default
    down = stream(http, point, "interpolatedattimes", time=picked, sortOrder="Descending")["Items"]
    assert down == [grid[5], grid[3], grid[1]]
    error = stream(http, point, "interpolatedattimes", expect=400)
    assert "'time' parameter is required" in error["Errors"][0]


def test_streamsets_equal_their_streams(simulator, http, points):
    chosen = [of_type(points, "Float32"), of_type(points, "Digital"), of_type(points, "String")]
    web_ids = [p["WebId"] for p in chosen]
    url = f"{simulator.url}/streamsets"
    sets = get_json(http, f"{url}/interpolated", webId=web_ids, interval="20m", **WINDOW)["Items"]
    values = get_json(http, f"{url}/value", webId=web_ids, time=WINDOW["startTime"])["Items"]
    assert [s["WebId"] for s in sets] == [v["WebId"] for v in values] == web_ids
    for point, one_set, one_value in zip(chosen, sets, values, strict=True):
        assert one_set["Name"] == one_value["Name"] == point["Name"]
        assert one_set["Items"] == stream(http, point, "interpolated", interval="20m", **WINDOW)["Items"]
        assert one_value["Value"] == stream(http, point, "value", time=WINDOW["startTime"])
    assert "webId" in get_json(http, f"{url}/value", expect=400)["Errors"][0]
