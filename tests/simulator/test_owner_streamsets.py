"""An element's or event frame's attributes as a stream set (`Links.Value`, `RecordedData`,
`InterpolatedData`, `EndValue`): every entry equals what the attribute's own stream serves."""

from __future__ import annotations

import pytest
import requests

from tests.simulator.helpers import get_json

WINDOW = {"startTime": "01-Mar-25 10:00:00", "endTime": "01-Mar-25 10:30:00"}


@pytest.fixture(scope="module")
def owners(simulator) -> dict[str, dict]:
    """An equipment element (PI Point and static attributes, one hidden, one excluded) and an event frame."""
    with requests.Session() as http:
        database = get_json(http, get_json(http, f"{simulator.url}/assetservers")["Items"][0]["Links"]["Databases"])
        database = database["Items"][0]
        elements = get_json(http, database["Links"]["Elements"], searchFullHierarchy="true", maxCount=10_000)["Items"]
        equipment = next(e for e in elements if "Legacy Tag" in attribute_names(http, e, showExcluded="true"))
        frame = get_json(http, database["Links"]["EventFrames"], startTime="*-1d", maxCount=1)["Items"][0]
        return {"element": equipment, "frame": frame}


def attribute_names(http, owner, **params) -> list[str]:
    return [a["Name"] for a in get_json(http, owner["Links"]["Attributes"], maxCount=1000, **params)["Items"]]


def attribute_streams(http, owner, **params) -> list[dict]:
    return get_json(http, owner["Links"]["Attributes"], maxCount=1000, **params)["Items"]


@pytest.mark.parametrize("kind", ["element", "frame"])
def test_values_and_end_values_equal_each_attribute(http, owners, kind):
    owner = owners[kind]
    attributes = attribute_streams(http, owner)
    for link, params in (("Value", {"time": WINDOW["endTime"]}), ("EndValue", {})):
        entries = get_json(http, owner["Links"][link], **params)["Items"]
        assert [e["WebId"] for e in entries] == [a["WebId"] for a in attributes]
        for entry, attribute in zip(entries, attributes, strict=True):
            assert entry["Name"] == attribute["Name"]
            assert entry["Value"] == get_json(http, attribute["Links"][link], **params)


def test_recorded_and_interpolated_equal_each_attribute(http, owners):
    owner = owners["element"]
    attributes = attribute_streams(http, owner)
    recorded = get_json(http, owner["Links"]["RecordedData"], **WINDOW)["Items"]
    interpolated = get_json(http, owner["Links"]["InterpolatedData"], interval="5m", **WINDOW)["Items"]
    assert any(len(r["Items"]) > 10 for r in recorded), "PI Point attributes should have history"
    for attribute, rec, grid in zip(attributes, recorded, interpolated, strict=True):
        assert rec["Items"] == get_json(http, attribute["Links"]["RecordedData"], **WINDOW)["Items"]
        assert grid["Items"] == get_json(http, attribute["Links"]["InterpolatedData"], interval="5m", **WINDOW)["Items"]
        assert rec["UnitsAbbreviation"] == grid["UnitsAbbreviation"]


def test_filters_and_errors(simulator, http, owners):
    owner = owners["element"]
    shown = [e["Name"] for e in get_json(http, owner["Links"]["Value"])["Items"]]
    assert shown == attribute_names(http, owner)  # hidden and excluded attributes are left out
    everything = get_json(http, owner["Links"]["Value"], showHidden="true", showExcluded="true")["Items"]
    assert {"Asset ID", "Legacy Tag"} <= {e["Name"] for e in everything}
    assert [e["Name"] for e in get_json(http, owner["Links"]["Value"], nameFilter="Model")["Items"]] == ["Model"]
    server = get_json(http, f"{simulator.url}/dataservers")["Items"][0]
    error = get_json(http, f"{simulator.url}/streamsets/{server['WebId']}/value", expect=400)
    assert "neither an element nor an event frame" in error["Errors"][0]


def test_summaries_equal_each_attribute_and_static_ones_carry_errors(simulator, http, owners):
    owner = owners["element"]
    params = {"summaryType": ["Average", "Count"], "summaryDuration": "10m", **WINDOW}
    entries = get_json(http, owner["Links"]["SummaryData"], **params)["Items"]
    by_name = {a["Name"]: a for a in attribute_streams(http, owner)}
    assert [e["Name"] for e in entries] == list(by_name)
    summarised = 0
    for entry in entries:
        single = get_json(http, by_name[entry["Name"]]["Links"]["SummaryData"], **params)
        assert entry["Items"] == single["Items"]  # static attributes: both carry per-type Errors
        summarised += "Errors" not in single["Items"][0]["Value"]
    assert 0 < summarised < len(entries)
    adhoc = get_json(
        http, f"{simulator.url}/streamsets/summary", webId=[a["WebId"] for a in by_name.values()], **params
    )
    assert [e["Items"] for e in adhoc["Items"]] == [e["Items"] for e in entries]
