"""Data servers and PI points, over real HTTP."""

from __future__ import annotations

import pytest

from osipi_connector.piwebapi import webid
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.core import Simulator
from osipi_connector.simulator.http import Request
from tests.simulator.helpers import all_points, get_json, points_url


def test_landing_and_system(simulator, http):
    landing = get_json(http, simulator.url)
    assert landing["Links"]["DataServers"] == f"{simulator.url}/dataservers"
    system = get_json(http, f"{simulator.url}/system")
    assert system["ProductTitle"] == "PI Web API"


def test_dataserver_shape(simulator, http):
    server = get_json(http, f"{simulator.url}/dataservers")["Items"][0]
    assert server["Name"] == "PISIM"
    assert server["WebId"].startswith("F1DS")
    assert server["IsConnected"] is True
    assert get_json(http, server["Links"]["Self"])["WebId"] == server["WebId"]
    assert get_json(http, f"{simulator.url}/dataservers", name="PISIM")["WebId"] == server["WebId"]
    get_json(http, f"{simulator.url}/dataservers", expect=404, name="OTHER")


def test_points_shape_and_types(simulator, http):
    points = all_points(http, simulator.url)
    assert len(points) == 510  # 500 generated points, then PI's 10 default points
    assert {p["PointType"] for p in points} == {"Float32", "Float64", "Int32", "Digital", "String"}
    first = points[0]
    assert set(first) >= {
        "WebId", "Id", "Name", "Path", "Descriptor", "PointClass", "PointType", "DigitalSetName",
        "EngineeringUnits", "Span", "Zero", "Step", "Future", "DisplayDigits", "Links",
    }  # fmt: skip
    assert first["Path"] == f"\\\\PISIM\\{first['Name']}"
    digital = next(p for p in points if p["PointType"] == "Digital")
    assert digital["DigitalSetName"] in ("Valve State", "Motor State")
    assert len({p["WebId"] for p in points}) == 510
    parsed = webid.decode(first["WebId"])
    assert parsed.marker == "DP"
    assert parsed.ints == (first["Id"],)


def test_points_paging_links_cover_every_point_once(simulator, http):
    url = points_url(http, simulator.url)
    seen: list[str] = []
    page = get_json(http, url, maxCount=70)
    for _ in range(20):
        seen += [p["Name"] for p in page["Items"]]
        if "Next" not in page["Links"]:
            break
        page = get_json(http, page["Links"]["Next"])
    assert len(seen) == 510
    assert len(set(seen)) == 510


def test_points_default_page_is_1000(http):
    from osipi_connector.simulator.server import running_simulator

    with running_simulator(SimConfig(seed=1, tags=1500)) as sim:
        page = get_json(http, points_url(http, sim.url))
        assert len(page["Items"]) == 1000
        assert "Next" in page["Links"]


def test_name_filter_and_selected_fields(simulator, http):
    url = points_url(http, simulator.url)
    page = get_json(http, url, nameFilter="ti*", selectedFields="Items.Name;Items.WebId")
    assert page["Items"]
    assert all(set(p) == {"Name", "WebId"} and p["Name"].startswith("TI") for p in page["Items"])
    one = get_json(http, url, nameFilter="TI00000?.PV")["Items"]
    assert all(len(p["Name"]) == len("TI000001.PV") for p in one)


def test_point_by_webid_path_and_attributes(simulator, http):
    point = all_points(http, simulator.url)[3]
    assert get_json(http, point["Links"]["Self"])["Name"] == point["Name"]
    assert get_json(http, f"{simulator.url}/points", path=point["Path"])["WebId"] == point["WebId"]
    path_only = webid.point_path_webid("PISIM", point["Name"])
    assert get_json(http, f"{simulator.url}/points/{path_only}")["Id"] == point["Id"]
    attrs = get_json(http, point["Links"]["Attributes"], name=["pointtype", "engunits"])["Items"]
    assert {a["Name"]: a["Value"] for a in attrs} == {
        "pointtype": point["PointType"],
        "engunits": point["EngineeringUnits"],
    }
    error = get_json(http, point["Links"]["Attributes"], expect=400, name="nosuchattribute")
    assert "nosuchattribute" in error["Errors"][0]


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/points/Garbage-1", 400),  # not a WebID
        ("/points/garbage", 404),  # a lower-case word where a WebID belongs: an action PI does not have
        ("/points/" + webid.encode("DP", (webid.uuid.UUID(int=5),), (1,), path="X\\Y"), 404),
        ("/dataservers/" + webid.encode("DS", (webid.uuid.UUID(int=5),), path="X"), 404),
        ("/nosuchcontroller", 404),
    ],
)
def test_bad_ids_give_pi_errors(simulator, http, path, status):
    body = get_json(http, simulator.url + path, expect=status)
    assert isinstance(body["Errors"], list)
    assert body["Errors"][0]


def test_points_are_generated_lazily():
    sim = Simulator(SimConfig(tags=100_000))
    assert sim.points.point.cache_info().currsize == 0
    last = sim.points.webid(99_999)
    response = sim.handle(Request("GET", f"/points/{last}"))
    assert response.status == 200
    assert response.body["Name"].endswith("100000.PV")
    assert sim.points.point.cache_info().currsize == 1
