"""Stream Updates in the simulator: register, retrieve with markers, the event actions, expired markers.

Reference: https://docs.aveva.com/bundle/pi-web-api-reference/page/help/topics/stream-updates.html (markers,
registration, re-register after a retrieval error), .../controllers/stream/actions/registerstreamupdate.html
(409 for a static attribute), .../controllers/stream/actions/retrievestreamupdate.html (409 invalid marker,
404 cache not found, the response body), .../controllers/streamset/actions/retrievestreamsetupdates.html and
the event actions of AF SDK's AFDataPipeAction (Add, Update, Delete):
https://docs.aveva.com/bundle/af-sdk/page/html/T_OSIsoft_AF_Data_AFDataPipeAction.htm
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from urllib.parse import urlencode

import orjson
import pytest

from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.core import Simulator
from osipi_connector.simulator.http import Request
from tests.conftest import FIXED_NOW

CONFIG = {
    "seed": 21,
    "tags": 60,
    "late_share": 0.4,
    "edit_share": 0.2,
    "edit_delay_s": 2 * 3600.0,
    "delete_share": 0.1,
    "delete_delay_s": 3 * 3600.0,
    "rate_limit_max_requests": 0,
}


def call(sim: Simulator, method: str, path: str, **params):
    query = urlencode(params, doseq=True)
    response = sim.handle(Request.from_url(method, path + ("?" + query if query else ""), "http://sim/piwebapi"))
    body = orjson.loads(response.encode()) if response.body is not None else None
    return response, body


def web_ids(sim: Simulator, count: int) -> list[str]:
    return [sim.points.webid(i) for i in range(count)]


@pytest.fixture
def sim() -> Simulator:
    return Simulator(SimConfig(now=FIXED_NOW, **CONFIG))


def recorded(sim: Simulator, web_id: str, start: str, end: str) -> list[dict]:
    response, body = call(sim, "GET", f"/streams/{web_id}/recorded", startTime=start, endTime=end, maxCount=150000)
    assert response.status == 200
    return body["Items"]


def test_register_answers_a_marker_and_the_updates_link(sim):
    web_id = web_ids(sim, 1)[0]
    response, body = call(sim, "POST", f"/streams/{web_id}/updates")
    assert response.status == 200
    assert body["Status"] == "Succeeded"
    assert body["Source"] == web_id
    assert body["SourceName"]
    assert body["SourcePath"].startswith("\\\\")
    assert response.headers["Location"] == body["Links"]["Updates"]
    assert body["Links"]["Updates"].endswith(f"/streams/updates/{body['LatestMarker']}")
    _, again = call(sim, "POST", f"/streams/{web_id}/updates")
    assert again["Status"] == "AlreadyRegistered"


def test_no_events_until_the_clock_moves_and_markers_chain(sim):
    web_id = web_ids(sim, 1)[0]
    _, reg = call(sim, "POST", f"/streams/{web_id}/updates")
    _, first = call(sim, "GET", f"/streams/updates/{reg['LatestMarker']}")
    assert first["Events"] == []
    assert first["RequestedMarker"] == reg["LatestMarker"]
    sim.config.now = FIXED_NOW + timedelta(minutes=30)
    _, second = call(sim, "GET", f"/streams/updates/{first['LatestMarker']}")
    assert second["Events"], "30 minutes of a busy point bring new values"
    assert {e["Action"] for e in second["Events"]} <= {"Add", "Update", "Delete"}
    assert list(second["Events"][0])[:3] == ["Action", "PreviousEventAction", "Timestamp"]
    # the same marker asked again (a client that lost the answer) replays the same events
    _, replay = call(sim, "GET", f"/streams/updates/{first['LatestMarker']}")
    assert replay["Events"] == second["Events"]
    _, third = call(sim, "GET", f"/streams/updates/{second['LatestMarker']}")
    assert third["Events"] == []


def test_events_turn_the_old_history_into_the_new_one(sim):
    """Applying the events since T0 to the history read at T0 gives the history read at T1: edits as Update
    with the new value, late values as Update before later values, new values as Add, removals as Delete."""
    ids = web_ids(sim, 20)
    _, reg = call(sim, "POST", "/streamsets/updates", webId=ids)
    markers = [item["LatestMarker"] for item in reg["Items"]]
    window = ("2025-03-01T07:00:00Z", "2025-03-01T16:00:00Z")  # every change reaches back at most 3 h
    before = {w: recorded(sim, w, *window) for w in ids}
    sim.config.now = FIXED_NOW + timedelta(hours=4)
    after = {w: recorded(sim, w, *window) for w in ids}
    _, got = call(sim, "GET", "/streamsets/updates", marker=markers)
    actions: dict[str, int] = defaultdict(int)
    for web_id, item in zip(ids, got["Items"], strict=True):
        assert item["Source"] == web_id
        assert item["Status"] == "Updated"
        old, new = _by_time(before[web_id]), _by_time(after[web_id])
        latest = max(old)
        changed = {t for t in set(old) | set(new) if old.get(t) != new.get(t)}
        assert {e["Timestamp"] for e in item["Events"]} == changed
        for event in item["Events"]:
            actions[event["Action"]] += 1
            value = {k: v for k, v in event.items() if k not in ("Action", "PreviousEventAction")}
            t = event["Timestamp"]
            if event["Action"] == "Delete":
                assert old[t].count(value) > new.get(t, []).count(value)
            else:
                assert value in new[t]
            if event["Action"] == "Add":
                assert t > latest, "Add: a value after every value the series held"
    assert actions["Add"]
    assert actions["Update"]
    assert actions["Delete"]


def _by_time(items: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = defaultdict(list)
    for item in items:
        out[item["Timestamp"]].append(item)
    return out


def test_invalid_and_expired_markers_answer_409_and_unregister(sim):
    web_id = web_ids(sim, 1)[0]
    _, reg = call(sim, "POST", f"/streams/{web_id}/updates")
    for bad in ("nonsense", reg["LatestMarker"].split("_")[0] + "_99999999999999999"):
        response, body = call(sim, "GET", f"/streams/updates/{bad}")
        assert response.status == 409
        assert "Invalid marker" in body["Errors"][0]
    response, _ = call(sim, "GET", f"/streams/updates/{'0' * 32}_1")
    assert response.status == 404  # a registration the server does not know: its cache entry is gone
    sim.config.now = FIXED_NOW + timedelta(seconds=sim.config.stream_updates_marker_lifetime_s + 1)
    response, body = call(sim, "GET", f"/streams/updates/{reg['LatestMarker']}")
    assert response.status == 409
    assert "expired" in body["Errors"][0]
    response, _ = call(sim, "GET", f"/streams/updates/{reg['LatestMarker']}")
    assert response.status == 404, "an error unregisters the stream: the client registers again"
    _, again = call(sim, "POST", f"/streams/{web_id}/updates")
    assert again["Status"] == "Succeeded"


def test_streamset_answers_a_failed_item_beside_good_ones(sim):
    ids = web_ids(sim, 2)
    _, reg = call(sim, "POST", "/streamsets/updates", webId=ids)
    assert [i["Status"] for i in reg["Items"]] == ["Succeeded", "Succeeded"]
    response, body = call(sim, "GET", "/streamsets/updates", marker=[reg["Items"][0]["LatestMarker"], "bad"])
    assert response.status == 200
    good, bad = body["Items"]
    assert good["Status"] == "Updated"
    assert bad["Status"] == "Failed"
    assert "Invalid marker" in bad["Exception"]["Errors"][0]
    response, _ = call(sim, "GET", "/streamsets/updates")
    assert response.status == 400


def test_static_attribute_cannot_register(sim):
    static = next(a for a in _attributes(sim) if a["DataReferencePlugIn"] == "")
    response, _ = call(sim, "POST", f"/streams/{static['WebId']}/updates")
    assert response.status == 409


def _attributes(sim: Simulator) -> list[dict]:
    _, servers = call(sim, "GET", "/assetservers")
    _, dbs = call(sim, "GET", servers["Items"][0]["Links"]["Databases"].split("/piwebapi")[1])
    _, elements = call(
        sim, "GET", dbs["Items"][0]["Links"]["Elements"].split("/piwebapi")[1], searchFullHierarchy="true"
    )
    out = []
    for element in elements["Items"][:20]:
        _, attrs = call(sim, "GET", element["Links"]["Attributes"].split("/piwebapi")[1])
        out += attrs["Items"]
    return out
