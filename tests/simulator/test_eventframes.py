"""Event frames over real HTTP: search modes against hand-computed expectations, open frames, filters."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests

from osipi_connector.piwebapi import webid
from osipi_connector.piwebapi.pitime import TICKS_PER_SECOND, format_ticks, parse_pi_timestamp_ticks
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.core import Simulator
from osipi_connector.simulator.eventframes import OPEN_END, OPEN_TICKS
from osipi_connector.simulator.http import Request
from osipi_connector.simulator.server import running_simulator
from tests.conftest import FIXED_NOW
from tests.simulator.helpers import get_json

HOUR = 3600 * TICKS_PER_SECOND
FRAME_KEYS = {
    "WebId", "Id", "Name", "Description", "Path", "TemplateName", "HasChildren", "CategoryNames", "ExtendedProperties",
    "StartTime", "EndTime", "Severity", "AcknowledgedBy", "AcknowledgedDate", "CanBeAcknowledged", "IsAcknowledged",
    "IsAnnotated", "IsLocked", "AreValuesCaptured", "RefElementWebIds", "Security", "Links",
}  # fmt: skip


@pytest.fixture(scope="module")
def frames_url(simulator) -> str:
    with requests.Session() as http:
        server = get_json(http, f"{simulator.url}/assetservers")["Items"][0]
        return get_json(http, server["Links"]["Databases"])["Items"][0]["Links"]["EventFrames"]


@pytest.fixture(scope="module")
def universe(simulator) -> list[tuple[str, int, int]]:
    """(name, start, end) of every frame of the last three days, built frame by frame from the model."""
    sim = simulator.sim
    model, now = sim.event_frames, sim.now_ticks()
    frames = [model.frame(k, now) for k in model.slots(now - 72 * HOUR, now)]
    return [(f.name, f.start, f.end) for f in frames if f is not None]


def ticks(text: str) -> int:
    return OPEN_TICKS if text == OPEN_END else parse_pi_timestamp_ticks(text)


def when(hours: float) -> str:
    """A PI absolute time `hours` from the fixed `now` (negative = past)."""
    return format_ticks(parse_pi_timestamp_ticks("2025-03-01T12:00:00Z") + int(hours * HOUR))


def search(http, url: str, **params) -> list[dict]:
    return get_json(http, url, maxCount=10_000, **params)["Items"]


def test_frame_shape_and_links(http, frames_url):
    frames = search(http, frames_url)
    assert frames
    for frame in frames:
        assert set(frame) == FRAME_KEYS
        assert frame["Path"] == f"\\\\PISIM-AF\\Plant\\EventFrames[{frame['Name']}]"
        assert webid.decode(frame["WebId"]).marker == "Fm"
        assert 1 <= len(frame["RefElementWebIds"]) <= 3
        assert frame["Severity"] in ("None", "Information", "Warning", "Minor", "Major", "Critical")
        assert frame["Links"]["PrimaryReferencedElement"].endswith(f"/elements/{frame['RefElementWebIds'][0]}")
        assert "PrimaryReferencedElementWebId" not in frame
        assert "Parent" not in frame["Links"]
    frame = frames[0]
    assert get_json(http, frame["Links"]["Self"]) == frame
    referenced = get_json(http, frame["Links"]["ReferencedElements"])["Items"]
    assert [e["WebId"] for e in referenced] == frame["RefElementWebIds"]
    primary = get_json(http, frame["Links"]["PrimaryReferencedElement"])
    assert primary["TemplateName"] in ("Pump", "Compressor", "HeatExchanger", "Tank", "Valve")
    assert get_json(http, frame["Links"]["Template"])["Name"] == frame["TemplateName"]
    assert len({f["Name"] for f in frames}) == len(frames)


WINDOW = (-30, -6)  # hours relative to now


@pytest.mark.parametrize(
    ("mode", "test"),
    [
        ("Overlapped", lambda s, e, lo, hi: s <= hi and e >= lo),
        ("Inclusive", lambda s, e, lo, hi: s >= lo and e <= hi),
        ("StartInclusive", lambda s, e, lo, hi: lo <= s <= hi),
        ("EndInclusive", lambda s, e, lo, hi: lo <= e <= hi),
    ],
)
def test_window_modes(http, frames_url, universe, mode, test):
    lo, hi = (ticks(when(h)) for h in WINDOW)
    expected = sorted(name for name, s, e in universe if test(s, e, lo, hi))
    got = search(http, frames_url, searchMode=mode, startTime=when(WINDOW[0]), endTime=when(WINDOW[1]))
    assert [f["Name"] for f in got] == expected
    assert expected


def test_in_progress_and_none_modes(http, frames_url, universe):
    lo, now = ticks(when(-10)), ticks(when(0))
    expected = sorted(name for name, s, e in universe if lo <= s <= now and e == OPEN_TICKS)
    got = search(http, frames_url, searchMode="InProgress", startTime=when(-10), endTime="*")
    assert [f["Name"] for f in got] == expected
    assert expected
    assert all(f["EndTime"] == OPEN_END for f in got)
    everything = get_json(http, frames_url, searchMode="None", maxCount=1)
    total = int(everything["Links"]["Last"].split("startIndex=")[1].split("&")[0]) + 1
    assert total == 48 * 425 + 24  # 2024-01-01 .. 2025-03-01T12:00 at 48 a day


@pytest.mark.parametrize(
    ("mode", "test", "key", "backward"),
    [
        ("BackwardFromStartTime", lambda s, e, t: s <= t, 1, True),
        ("ForwardFromStartTime", lambda s, e, t: s >= t, 1, False),
        ("BackwardFromEndTime", lambda s, e, t: e <= t, 2, True),
        ("ForwardFromEndTime", lambda s, e, t: e > t, 2, False),
        ("BackwardInProgress", lambda s, e, t: e == OPEN_TICKS and s <= t, 1, True),
        ("ForwardInProgress", lambda s, e, t: e == OPEN_TICKS and s >= t, 1, False),
    ],
)
def test_direction_modes(http, frames_url, universe, mode, test, key, backward):
    t_text = when({"BackwardInProgress": -1, "ForwardInProgress": -10}.get(mode, -20))
    t = ticks(t_text)
    matching = sorted((f for f in universe if test(f[1], f[2], t)), key=lambda f: f[key], reverse=backward)
    got = get_json(http, frames_url, searchMode=mode, startTime=t_text, maxCount=20)["Items"]
    field = "StartTime" if key == 1 else "EndTime"
    assert [ticks(f[field]) for f in got] == [f[key] for f in matching[:20]]
    assert {f["Name"] for f in got} <= {f[0] for f in universe if test(f[1], f[2], t)}
    assert got


def test_direction_modes_reject_end_time_and_sorting(http, frames_url):
    for param in ({"endTime": "*"}, {"sortField": "StartTime"}, {"sortOrder": "Descending"}):
        body = get_json(http, frames_url, expect=400, searchMode="ForwardFromStartTime", **param)
        assert body["Errors"]


def test_open_frames_close_as_time_passes():
    later = FIXED_NOW + timedelta(hours=10)
    before = Simulator(SimConfig(seed=7, tags=500, now=FIXED_NOW))
    after = Simulator(SimConfig(seed=7, tags=500, now=later))

    def get(sim: Simulator, path: str, **query: str) -> dict:
        response = sim.handle(Request("GET", path, list(query.items())))
        assert response.status == 200, response.body
        return response.body

    db = before.af.database_webid
    open_frames = get(before, f"/assetdatabases/{db}/eventframes", searchMode="InProgress", startTime="*-10h")["Items"]
    assert open_frames
    for frame in open_frames:
        assert frame["EndTime"] == OPEN_END
        assert frame["IsAcknowledged"] is False
        assert frame["AreValuesCaptured"] is False
        closed = get(after, f"/eventframes/{frame['WebId']}")
        assert closed["StartTime"] == frame["StartTime"]
        assert closed["Name"] == frame["Name"]
        assert closed["EndTime"] != OPEN_END  # at most 8 h long, so closed 10 h later
        assert ticks(frame["StartTime"]) < ticks(closed["EndTime"]) <= ticks(when(10))
        assert ticks(closed["EndTime"]) > ticks(when(0))
    newer = get(after, f"/assetdatabases/{db}/eventframes", searchMode="StartInclusive", startTime=when(1))["Items"]
    assert newer
    missing = before.handle(Request("GET", f"/eventframes/{newer[0]['WebId']}"))
    assert missing.status == 404  # not started yet at the earlier `now`


def test_acknowledgement_follows_close(http, frames_url):
    frames = search(http, frames_url, startTime="*-3d")
    acknowledged = [f for f in frames if f["IsAcknowledged"]]
    assert acknowledged
    for frame in frames:
        if frame["IsAcknowledged"]:
            assert frame["CanBeAcknowledged"]
            assert frame["EndTime"] != OPEN_END
            assert ticks(frame["EndTime"]) < ticks(frame["AcknowledgedDate"]) <= ticks(when(0))
            assert frame["AcknowledgedBy"].startswith("PLANT\\")
        else:
            assert frame["AcknowledgedBy"] == ""
            assert frame["AcknowledgedDate"] == "1970-01-01T00:00:00Z"
    assert not any(f["CanBeAcknowledged"] for f in frames if f["TemplateName"] == "Batch")


def test_filters(http, frames_url):
    def names(**params) -> set[str]:
        return {f["Name"] for f in search(http, frames_url, startTime="*-2d", **params)}

    def frames(**params) -> list[dict]:
        return search(http, frames_url, startTime="*-2d", **params)

    everything = frames()
    assert {f["TemplateName"] for f in frames(templateName="batch")} == {"Batch"}
    assert {f["TemplateName"] for f in frames(categoryName="Reliability")} == {"Downtime"}
    severe = get_json(http, frames_url, startTime="*-2d", severity=["Major", "critical"])["Items"]
    assert severe
    assert {f["Severity"] for f in severe} == {"Major", "Critical"}
    assert {f["TemplateName"] for f in frames(canBeAcknowledged="false")} == {"Batch"}
    assert all(f["IsAcknowledged"] for f in frames(isAcknowledged="true"))
    assert names(isAcknowledged="true") | names(isAcknowledged="false") == {f["Name"] for f in everything}
    assert names(nameFilter="alarm-20250301-*") == {
        f["Name"] for f in everything if f["Name"].startswith("Alarm-20250301-")
    }
    for frame in frames(referencedElementNameFilter="P-*")[:5]:
        referenced = get_json(http, frame["Links"]["ReferencedElements"])["Items"]
        assert any(e["Name"].startswith("P-") for e in referenced)
    pumps = names(referencedElementTemplateName="Pump")
    assert pumps
    assert pumps < {f["Name"] for f in everything}


def test_sorting(http, frames_url):
    by_start = search(http, frames_url, startTime="*-1d", sortField="StartTime", sortOrder="Descending")
    starts = [ticks(f["StartTime"]) for f in by_start]
    assert starts == sorted(starts, reverse=True)
    by_end = search(http, frames_url, startTime="*-1d", sortField="EndTime")
    ends = [ticks(f["EndTime"]) for f in by_end]
    assert ends == sorted(ends)
    get_json(http, frames_url, expect=400, sortField="Colour")


def test_paging_covers_every_frame_once(http, frames_url):
    expected = [f["WebId"] for f in search(http, frames_url, startTime="*-2d")]
    seen: list[str] = []
    page = get_json(http, frames_url, startTime="*-2d", maxCount=7)
    while True:
        seen += [f["WebId"] for f in page["Items"]]
        if "Next" not in page["Links"]:
            break
        page = get_json(http, page["Links"]["Next"])
    assert seen == expected
    assert len(expected) > 7 * 3


def test_element_event_frames(simulator, http, frames_url):
    frame = next(f for f in search(http, frames_url, startTime="*-1d") if len(f["RefElementWebIds"]) >= 2)
    primary = get_json(http, frame["Links"]["PrimaryReferencedElement"])
    own = search(http, primary["Links"]["EventFrames"], startTime="*-1d")
    assert frame["Name"] in {f["Name"] for f in own}
    assert all(primary["WebId"] in f["RefElementWebIds"] for f in own)
    area = get_json(http, get_json(http, primary["Links"]["Parent"])["Links"]["Parent"])
    assert search(http, area["Links"]["EventFrames"], startTime="*-1d") == []  # nothing references an area
    subtree = search(http, area["Links"]["EventFrames"], startTime="*-1d", searchFullHierarchy="true")
    assert frame["Name"] in {f["Name"] for f in subtree}
    assert {f["Name"] for f in own} <= {f["Name"] for f in subtree}


def test_frame_attributes(simulator, http, frames_url):
    for frame in search(http, frames_url, startTime="*-1d")[:10]:
        attributes = get_json(http, frame["Links"]["Attributes"])["Items"]
        names = {a["Name"] for a in attributes}
        assert "Operator" in names
        assert {"BatchID", "Product"} <= names or {"Reason"} <= names or {"Priority", "Limit"} <= names
        primary = get_json(http, frame["Links"]["PrimaryReferencedElement"])
        owned = {a["ConfigString"] for a in get_json(http, primary["Links"]["Attributes"])["Items"]} - {""}
        for attribute in attributes:
            assert webid.decode(attribute["WebId"]).marker == "AbF"
            assert attribute["Path"] == f"{frame['Path']}|{attribute['Name']}"
            assert get_json(http, attribute["Links"]["Self"]) == attribute
            source = simulator.sim.af.stream_source(attribute["WebId"])
            assert source is not None
            assert source.name == attribute["Name"]
            if attribute["DataReferencePlugIn"] == "PI Point":
                assert attribute["ConfigString"] in owned  # a point of the primary element
                assert get_json(http, attribute["Links"]["Point"])["Path"] == attribute["ConfigString"]
                assert simulator.sim.points.path(source.point_index) == attribute["ConfigString"]
            else:
                assert source.point_index is None
                assert source.static_value is not None


def test_get_by_path_and_path_only_webid(simulator, http, frames_url):
    frame = search(http, frames_url)[0]
    assert get_json(http, f"{simulator.url}/eventframes", path=frame["Path"])["WebId"] == frame["WebId"]
    path_only = webid.encode("Fm", path=frame["Path"][2:], kind="P")
    assert get_json(http, f"{simulator.url}/eventframes/{path_only}")["WebId"] == frame["WebId"]
    get_json(http, f"{simulator.url}/eventframes", expect=404, path=frame["Path"].replace("-0", "-9"))


def test_errors(simulator, http, frames_url):
    sim = simulator.sim
    future = webid.encode("Fm", (sim.ids.system_guid("Fm"), sim.ids.guid("eventframe", 10_000_000)), path="X")
    element = sim.af.webid(0)
    cases = [
        (f"{simulator.url}/eventframes/{future}", {}, 404),
        (f"{simulator.url}/eventframes/F1Fm%%%", {}, 400),
        (f"{simulator.url}/eventframes/{element}", {}, 400),
        (frames_url, {"searchMode": "Exact"}, 400),
        (frames_url, {"startTime": "yesterday-ish"}, 400),
        (frames_url, {"endTime": "*+1fortnight"}, 400),
        (frames_url, {"severity": "Apocalyptic"}, 400),
        (frames_url, {"canBeAcknowledged": "perhaps"}, 400),
        (frames_url, {"maxCount": "150001"}, 400),
        (frames_url, {"startIndex": "-1"}, 400),
    ]
    for url, params, status in cases:
        body = get_json(http, url, expect=status, **params)
        assert body["Errors"], url


def test_long_windows_page_and_before_history_is_empty(simulator, http, frames_url):
    """A 20-year window answers one page (speed is measured in benchmarks, not asserted here)."""
    page = get_json(http, frames_url, startTime="2015-01-01T00:00:00Z", endTime="2035-01-01T00:00:00Z")
    assert len(page["Items"]) == 1000
    assert "Next" in page["Links"]
    back = get_json(http, frames_url, searchMode="BackwardFromEndTime", startTime="*", maxCount=5)["Items"]
    assert len(back) == 5
    empty = get_json(http, frames_url, startTime="2020-01-01T00:00:00Z", endTime="2023-12-31T00:00:00Z")
    assert empty["Items"] == []
    assert get_json(http, frames_url, searchMode="BackwardFromStartTime", startTime="2023-06-01")["Items"] == []


def test_two_servers_same_seed_same_bytes(simulator, http, frames_url):
    paths = [
        ("/assetservers", {}),
        (frames_url.split("/piwebapi")[1], {"startTime": "*-2d", "maxCount": "50"}),
        (frames_url.split("/piwebapi")[1], {"searchMode": "BackwardInProgress", "startTime": "*"}),
    ]
    with running_simulator(SimConfig(seed=7, tags=500, now=FIXED_NOW, rate_limit_max_requests=0)) as twin:
        for path, params in reversed(paths):  # a different call order on the twin
            theirs = http.get(twin.url + path, params=params).content.replace(twin.url.encode(), b"BASE")
            ours = http.get(simulator.url + path, params=params).content.replace(simulator.url.encode(), b"BASE")
            assert theirs == ours
