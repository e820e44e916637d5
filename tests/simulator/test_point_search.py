"""`GET /points/search`: the PIPoint search query syntax, paging and errors."""

from __future__ import annotations

import pytest
import requests

from tests.simulator.helpers import all_points, get_json


@pytest.fixture(scope="module")
def points(simulator):
    with requests.Session() as session:
        return all_points(session, simulator.url)


def search(http, base, expect=200, **params):
    return get_json(http, f"{base}/points/search", expect=expect, **params)


def names(body) -> list[str]:
    return [p["Name"] for p in body["Items"]]


def test_items_are_point_objects_and_bare_values_mean_tag(simulator, http, points):
    first = points[0]
    body = search(http, simulator.url, query=first["Name"])
    assert body["Items"] == [first]  # the same object GET /points/{webId} answers
    assert names(search(http, simulator.url, query=f"tag:={first['Name'].lower()}")) == [first["Name"]]


@pytest.mark.parametrize(
    ("query", "keep"),
    [
        ("name:TI*", lambda p: p["Name"].startswith("TI")),
        ("tag:TI* OR tag:PI*", lambda p: p["Name"].startswith(("TI", "PI"))),
        ("(tag:TI*) OR (tag:PI*)", lambda p: p["Name"].startswith(("TI", "PI"))),
        ("tag:<>TI*", lambda p: not p["Name"].startswith("TI")),
        (
            "pointtype:Int32 AND name:CNT00000?.PV",
            lambda p: p["PointType"] == "Int32" and p["Name"].startswith("CNT00000"),
        ),
        ("datatype:Digital pointid:<=50", lambda p: p["PointType"] == "Digital" and p["Id"] <= 50),
        ("description:'*Temperature*'", lambda p: "Temperature" in p["Descriptor"]),
    ],
)
def test_query_syntax(simulator, http, points, query, keep):
    expected = [p["Name"] for p in points if keep(p)]
    assert expected, "the query should select something in this catalog"
    assert names(search(http, simulator.url, query=query, maxCount=1000)) == expected


def test_escaped_characters_and_search_name_and_descriptor(simulator, http, points):
    point = points[3]
    escaped = point["Descriptor"].replace(" ", "\\ ")
    assert point["Name"] in names(search(http, simulator.url, query=f"descriptor:{escaped}"))
    both = search(http, simulator.url, query=escaped, searchNameAndDescriptor="true")
    assert names(both) == [point["Name"]]
    assert search(http, simulator.url, query=escaped)["Items"] == []  # a bare value is a Tag filter only


def test_data_server_paging_and_selected_fields(simulator, http, points):
    server = get_json(http, f"{simulator.url}/dataservers")["Items"][0]
    page = search(http, simulator.url, dataServerWebId=server["WebId"], query="*", maxCount=7, startIndex=7)
    assert names(page) == [p["Name"] for p in points[7:14]]
    assert "startIndex=14" in page["Links"]["Next"]
    slim = search(http, simulator.url, query="TI*", selectedFields="Items.Name;Items.WebId", maxCount=2)
    assert [set(item) for item in slim["Items"]] == [{"Name", "WebId"}] * 2


@pytest.mark.parametrize(
    ("params", "status", "message"),
    [
        ({"query": "value:>3"}, 400, "filters on values"),
        ({"query": "nosuchattr:=1"}, 400, "'nosuchattr' is not a PI point attribute"),
        ({"query": "tag:'open"}, 400, "unclosed quote"),
        ({"query": "*", "maxCount": 1001}, 400, "cannot be greater than 1000"),
        ({"query": "*", "dataServerWebId": "garbage"}, 400, "WebID"),
    ],
)
def test_errors_name_the_problem(simulator, http, params, status, message):
    body = search(http, simulator.url, expect=status, **params)
    assert message in body["Errors"][0]
