"""`/streams/{id}/plot`: per interval the first, last, lowest, highest and one exceptional value, all
taken from what `/recorded` serves for the same window."""

from __future__ import annotations

import pytest
import requests

from osipi_connector.piwebapi.pitime import parse_pi_timestamp_ticks
from tests.simulator.helpers import all_points, get_json

WINDOW = {"startTime": "2025-03-01T00:00:00Z", "endTime": "2025-03-01T12:00:00Z"}
INTERVALS = 12


@pytest.fixture(scope="module")
def points(simulator):
    with requests.Session() as session:
        return all_points(session, simulator.url)


def expected_plot(recorded: list[dict], numeric: bool) -> list[dict]:
    lo, hi = (parse_pi_timestamp_ticks(WINDOW[k]) for k in ("startTime", "endTime"))
    buckets: dict[int, list[int]] = {}
    for i, item in enumerate(recorded):
        t = parse_pi_timestamp_ticks(item["Timestamp"])
        b = next(k for k in range(INTERVALS) if k == INTERVALS - 1 or t < lo + (hi - lo) * (k + 1) // INTERVALS)
        buckets.setdefault(b, []).append(i)
    keep: set[int] = set()
    for members in buckets.values():
        keep |= {members[0], members[-1]}
        keep |= set([i for i in members if not recorded[i]["Good"]][:1])
        good = [i for i in members if recorded[i]["Good"]]
        if numeric and good:
            keep |= {
                min(good, key=lambda i: (recorded[i]["Value"], i)),
                max(good, key=lambda i: (recorded[i]["Value"], -i)),
            }
    return [recorded[i] for i in sorted(keep)]


@pytest.mark.parametrize("point_type", ["Float32", "Int32", "Digital"])
def test_plot_values_come_from_recorded(simulator, http, points, point_type):
    candidates = [p for p in points if p["PointType"] == point_type][:10]
    histories = [get_json(http, p["Links"]["RecordedData"], maxCount=150_000, **WINDOW)["Items"] for p in candidates]
    point, recorded = max(zip(candidates, histories, strict=True), key=lambda pair: len(pair[1]))  # the densest
    plot = get_json(http, point["Links"]["PlotData"], intervals=INTERVALS, **WINDOW)
    assert set(plot) == {"Links", "Items", "UnitsAbbreviation"}
    assert len(recorded) > 2 * len(plot["Items"]) > 0  # a real reduction
    assert plot["Items"] == expected_plot(recorded, numeric=point_type != "Digital")
    backwards = get_json(
        http, point["Links"]["PlotData"], intervals=INTERVALS, startTime=WINDOW["endTime"], endTime=WINDOW["startTime"]
    )
    assert backwards["Items"] == plot["Items"][::-1]


def test_plot_stream_sets_and_errors(simulator, http, points):
    chosen = points[:2]
    sets = get_json(http, f"{simulator.url}/streamsets/plot", webId=[p["WebId"] for p in chosen], **WINDOW)["Items"]
    for point, entry in zip(chosen, sets, strict=True):
        assert entry["Items"] == get_json(http, point["Links"]["PlotData"], **WINDOW)["Items"]  # 24 intervals
    error = get_json(http, chosen[0]["Links"]["PlotData"], expect=400, intervals="0")
    assert "intervals" in error["Errors"][0]
