"""The at-times actions and the remaining stream-set forms agree with the single-stream actions they
generalise (Stream GetRecordedAtTimes, StreamSet GetRecordedAtTimeAdHoc / GetEndAdHoc / GetJoined,
Attribute GetValue; https://docs.aveva.com/bundle/pi-web-api-reference/page/help/controllers/streamset.html)."""

from __future__ import annotations

import pytest
import requests

from tests.simulator.helpers import get_json

WINDOW = {"startTime": "2025-03-01T09:00:00Z", "endTime": "2025-03-01T10:00:00Z"}
TIMES = ["2025-03-01T09:00:00Z", "2025-03-01T09:17:30Z", "2025-03-01T09:59:59Z"]


@pytest.fixture(scope="module")
def pair(simulator) -> list[dict]:
    with requests.Session() as http:
        points = get_json(http, f"{simulator.url}/dataservers")["Items"][0]["Links"]["Points"]
        items = get_json(http, points, maxCount=50)["Items"]
    return [next(p for p in items if p["PointType"] == t) for t in ("Float32", "Digital")]


def test_recorded_at_times_equals_recorded_at_time_each(simulator, http, pair):
    for point in pair:
        base = f"{simulator.url}/streams/{point['WebId']}"
        many = get_json(http, f"{base}/recordedattimes", time=TIMES, retrievalMode="AtOrBefore")["Items"]
        singles = [get_json(http, f"{base}/recordedattime", time=t, retrievalMode="AtOrBefore") for t in TIMES]
        assert many == singles


def test_adhoc_stream_set_forms_equal_their_streams(simulator, http, pair):
    ids = [p["WebId"] for p in pair]
    url = f"{simulator.url}/streamsets"
    end = get_json(http, f"{url}/end", webId=ids)["Items"]
    assert [e["Value"] for e in end] == [get_json(http, p["Links"]["EndValue"]) for p in pair]
    at = get_json(http, f"{url}/recordedattime", webId=ids, time=TIMES[1])["Items"]
    assert [e["Value"] for e in at] == [
        get_json(http, f"{simulator.url}/streams/{w}/recordedattime", time=TIMES[1]) for w in ids
    ]
    interpolated = get_json(http, f"{url}/interpolatedattimes", webId=ids, time=TIMES)["Items"]
    assert [e["Items"] for e in interpolated] == [
        get_json(http, f"{simulator.url}/streams/{w}/interpolatedattimes", time=TIMES)["Items"] for w in ids
    ]


def test_joined_is_the_base_recorded_and_the_others_interpolated_at_its_times(simulator, http, pair):
    base, other = pair[0]["WebId"], pair[1]["WebId"]
    joined = get_json(http, f"{simulator.url}/streamsets/joined", baseWebId=base, subordinateWebId=other, **WINDOW)
    first, second = joined["Items"]
    assert first["WebId"] == base
    assert first["Items"] == get_json(http, f"{simulator.url}/streams/{base}/recorded", **WINDOW)["Items"]
    times = [v["Timestamp"] for v in first["Items"]]
    expected = get_json(http, f"{simulator.url}/streams/{other}/interpolatedattimes", time=times)["Items"]
    assert second["Items"] == expected


def test_attribute_value_equals_its_stream_value(simulator, http):
    server = get_json(http, f"{simulator.url}/assetservers")["Items"][0]
    database = get_json(http, server["Links"]["Databases"])["Items"][0]
    element = get_json(http, database["Links"]["Elements"], searchFullHierarchy="true", maxCount=500)["Items"][-1]
    for attribute in get_json(http, element["Links"]["Attributes"])["Items"][:4]:
        value = get_json(http, f"{simulator.url}/attributes/{attribute['WebId']}/value")
        assert value == get_json(http, attribute["Links"]["Value"])
