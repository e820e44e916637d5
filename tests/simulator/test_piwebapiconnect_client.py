"""`piwebapiconnect` (an asynchronous httpx client from PyPI) works against the simulator unchanged,
driven through its README: connect with credentials passed directly, current value, several current
values, recorded, interpolated, summary, tag attributes and search, asset servers and databases. Its
README uses PI's default points (SINUSOID, CDT158, BA:LEVEL.1), which the simulator serves besides its
generated plant. Every value is compared with the simulator's own endpoints, never with numbers
written here.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from piwebapiconnect import get_service

from osipi_connector.simulator.server import RunningSimulator, running_simulator

USER = ("piuser", "pipassword")
TAGS = ["SINUSOID", "CDT158", "BA:LEVEL.1"]


@pytest.fixture(scope="module")
def pi(sim_config) -> Iterator[RunningSimulator]:
    with running_simulator(dataclasses.replace(sim_config, auth="basic")) as running:
        yield running


@pytest.fixture(scope="module")
def ref(pi) -> Iterator[requests.Session]:
    """A plain session reading the simulator's own endpoints: the reference for every comparison."""
    with requests.Session() as session:
        session.auth = USER
        yield session


def with_service(pi: RunningSimulator, work: Any) -> Any:
    """Run `work(service)` the README's way: credentials passed directly, closed afterwards."""

    async def main() -> Any:
        service = get_service(url=pi.url, username=USER[0], password=USER[1], server_name="PISIM", verify_ssl=False)
        try:
            return await work(service)
        finally:
            await service.close()

    return asyncio.run(main())


def served(ref: requests.Session, url: str, **params: Any) -> Any:
    response = ref.get(url, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def stream_url(ref, pi, tag: str) -> str:
    point = served(ref, f"{pi.url}/points", path="\\\\PISIM\\" + tag)
    return f"{pi.url}/streams/{point['WebId']}"


def test_connection_reports_the_server_time(pi, ref):
    status = with_service(pi, lambda s: s.test_connection())
    assert status["status"] == "connected"
    assert status["server_time"] == served(ref, f"{pi.url}/system/status")["ServerTime"]


def test_current_values_one_and_several(pi, ref):
    async def work(service):
        return await service.get_current_value("SINUSOID"), await service.get_multiple_current_values(TAGS)

    one, several = with_service(pi, work)
    value = served(ref, f"{stream_url(ref, pi, 'SINUSOID')}/value")
    assert (one["value"], one["timestamp"]) == (value["Value"], value["Timestamp"])
    for tag in TAGS:
        value = served(ref, f"{stream_url(ref, pi, tag)}/value")
        assert several[tag] == {"value": value["Value"], "timestamp": value["Timestamp"]}


def test_recorded_interpolated_and_summary(pi, ref):
    async def work(service):
        return (
            await service.get_recorded_values("SINUSOID", "*-24h", "*"),
            await service.get_interpolated_values("SINUSOID", "*-24h", "*", interval="1h"),
            await service.get_summary_data("SINUSOID", "*-24h", "*", summary_type="Average"),
        )

    history, interpolated, summary = with_service(pi, work)
    url = stream_url(ref, pi, "SINUSOID")
    recorded = served(ref, f"{url}/recorded", startTime="*-24h", endTime="*")["Items"]
    assert history == [{"timestamp": v["Timestamp"], "value": v["Value"]} for v in recorded]
    grid = served(ref, f"{url}/interpolated", startTime="*-24h", endTime="*", interval="1h")["Items"]
    assert interpolated == [{"timestamp": v["Timestamp"], "value": v["Value"]} for v in grid]
    average = served(ref, f"{url}/summary", startTime="*-24h", endTime="*", summaryType="Average")["Items"][0]
    assert summary == {
        "type": "Average",
        "value": average["Value"]["Value"],
        "timestamp": average["Value"]["Timestamp"],
    }
    assert 40 < summary["value"] < 60  # a whole day of the 12-hour sine wave averages near its middle


def test_tag_metadata_and_search(pi, ref):
    async def work(service):
        return await service.get_tag_attributes("SINUSOID"), await service.search_tags("BA:*")

    attributes, found = with_service(pi, work)
    point = served(ref, f"{pi.url}/points", path="\\\\PISIM\\SINUSOID")
    assert attributes == {
        "name": point["Name"], "descriptor": point["Descriptor"], "pointClass": point["PointClass"],
        "pointType": point["PointType"], "engineeringUnits": point["EngineeringUnits"], "step": point["Step"],
    }  # fmt: skip
    server = served(ref, f"{pi.url}/dataservers")["Items"][0]
    assert found == [p["Name"] for p in served(ref, server["Links"]["Points"], nameFilter="BA:*")["Items"]]
    assert "BA:LEVEL.1" in found


def test_asset_servers_and_databases(pi, ref):
    name = pi.sim.config.af_server_name

    async def work(service):
        return await service.get_asset_servers(), await service.get_organizations(name)

    servers, databases = with_service(pi, work)
    listed = served(ref, f"{pi.url}/assetservers")["Items"]
    assert servers == [s["Name"] for s in listed]
    assert databases == [d["Name"] for d in served(ref, listed[0]["Links"]["Databases"])["Items"]]
