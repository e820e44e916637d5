"""Every data link the simulator advertises answers: points, elements, event frames, attributes."""

from __future__ import annotations

import pytest

from tests.simulator.helpers import all_points, get_json

DATA_LINKS = ("Value", "EndValue", "RecordedData", "InterpolatedData", "PlotData", "SummaryData")
WINDOW = {"startTime": "*-2h", "endTime": "*"}


@pytest.fixture(scope="module")
def owners(simulator) -> list[dict]:
    import requests

    with requests.Session() as http:
        database = get_json(http, get_json(http, f"{simulator.url}/assetservers")["Items"][0]["Links"]["Databases"])
        database = database["Items"][0]
        elements = get_json(http, database["Links"]["Elements"], searchFullHierarchy="true", maxCount=1000)["Items"]
        frame = get_json(http, database["Links"]["EventFrames"], startTime="*-1d", maxCount=1)["Items"][0]
        point_attribute = next(
            a
            for e in reversed(elements)  # equipment sits at the bottom of the tree
            for a in get_json(http, e["Links"]["Attributes"])["Items"]
            if a["DataReferencePlugIn"] == "PI Point"
        )
        return [all_points(http, simulator.url)[0], elements[0], elements[-1], frame, point_attribute]


def test_every_data_link_answers(http, owners):
    checked = 0
    for owner in owners:
        for name in DATA_LINKS:
            if name in owner["Links"]:
                params = {} if name in ("Value", "EndValue") else WINDOW
                get_json(http, owner["Links"][name], **params)
                checked += 1
    assert checked >= 20  # every kind of owner advertises most of them
