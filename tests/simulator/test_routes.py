"""Every link the simulator advertises answers, and every GET route of the official swagger in the
controllers it serves is there.

The swagger's routes are read from `osisoft-pidevclub-piwebapi`, OSIsoft's client generated from it
(PI Web API Reference, https://docs.aveva.com/bundle/pi-web-api-reference/page/help.html, lists the same
controllers and actions). Where nothing is modelled (analyses, tables, security identities) the answer
is an empty collection, as a PI System without them gives; WebSocket channels and the AF XML export
are 501 with what to use instead; a saved attribute search that was never created is 404.
"""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path

import osisoft.pidevclub.piwebapi.api as swagger_api
import pytest
import requests

from tests.simulator.helpers import get_json

WEBID_SEGMENT = re.compile(r"/[FIPLD]1[A-Za-z]{2,3}[A-Za-z0-9_-]+")
SERVED = {
    "", "system", "search", "dataservers", "points", "streams", "streamsets", "assetservers", "assetdatabases",
    "elements", "attributes", "elementtemplates", "elementcategories", "attributetemplates", "attributecategories",
    "eventframes",
    "enumerationsets", "enumerationvalues",
}  # fmt: skip
NOT_SIMULATED = {"/streams/{webId}/channel", "/streamsets/channel", "/streamsets/{webId}/channel",
                 "/assetdatabases/{webId}/export"}  # fmt: skip
NEVER_CREATED = {"/elements/searchbyattribute/{searchId}", "/eventframes/searchbyattribute/{searchId}"}


def shape(url: str) -> str:
    return WEBID_SEGMENT.sub("/{webId}", url.split("?")[0].split("/piwebapi", 1)[1])


def links_in(body: object) -> list[str]:
    """The Links of an answer and of its first items (every item of a collection has the same links)."""
    found: list[str] = []
    if isinstance(body, dict):
        for key, value in body.items():
            if key == "Links" and isinstance(value, dict):
                found += [v for v in value.values() if isinstance(v, str) and v.startswith("http")]
            else:
                found += links_in(value)
    elif isinstance(body, list):
        for item in body[:2]:
            found += links_in(item)
    return found


def test_every_advertised_link_answers(simulator):
    """A breadth-first walk from the landing page over every `Links` member: each distinct route
    (WebIDs aside) is requested once and answers 200."""
    seen: dict[str, int] = {}
    queue = deque([f"{simulator.url}/"])
    with requests.Session() as http:
        while queue and len(seen) < 400:
            url = queue.popleft()
            if shape(url) in seen:
                continue
            response = http.get(url)
            seen[shape(url)] = response.status_code
            if response.status_code == 200:
                queue.extend(links_in(response.json()))
    failing = {route: status for route, status in seen.items() if status != 200}
    assert not failing
    assert len(seen) > 70  # the walk reached the whole surface (servers, AF, event frames, streams, sets)


def swagger_get_routes() -> list[str]:
    routes = set()
    for module in Path(swagger_api.__file__).parent.glob("*.py"):
        routes |= set(re.findall(r"call_api\('([^']*)', 'GET'", module.read_text()))
    return sorted(r.rstrip("/") or "/" for r in routes if r.strip("/").split("/")[0] in SERVED)


@pytest.fixture(scope="module")
def sample(simulator) -> dict[str, dict]:
    """One served object per collection, to fill the swagger's `{webId}` and `path` parameters."""
    with requests.Session() as http:
        base = simulator.url
        data_server = get_json(http, f"{base}/dataservers")["Items"][0]
        af_server = get_json(http, f"{base}/assetservers")["Items"][0]
        database = get_json(http, af_server["Links"]["Databases"])["Items"][0]
        element = get_json(http, database["Links"]["Elements"], searchFullHierarchy="true", maxCount=100)["Items"][-1]
        template = get_json(http, element["Links"]["Template"])
        enumeration_set = get_json(http, data_server["Links"]["EnumerationSets"])["Items"][0]
        return {
            "dataservers": data_server,
            "points": get_json(http, data_server["Links"]["Points"], maxCount=1)["Items"][0],
            "assetservers": af_server,
            "assetdatabases": database,
            "elements": element,
            "attributes": get_json(http, element["Links"]["Attributes"])["Items"][0],
            "eventframes": get_json(http, database["Links"]["EventFrames"], startTime="*-30d")["Items"][0],
            "elementtemplates": template,
            "elementcategories": get_json(http, database["Links"]["ElementCategories"])["Items"][0],
            "attributecategories": get_json(http, database["Links"]["AttributeCategories"])["Items"][0],
            "attributetemplates": get_json(http, template["Links"]["AttributeTemplates"])["Items"][0],
            "enumerationsets": enumeration_set,
            "enumerationvalues": get_json(http, enumeration_set["Links"]["Values"])["Items"][0],
        }


def request_for(route: str, sample: dict[str, dict]) -> tuple[str, dict]:
    """The URL and query that exercise a swagger route on our objects."""
    parts = route.strip("/").split("/")
    collection = parts[0]
    owner = sample.get(collection) or (sample["points"] if collection == "streams" else sample["elements"])
    name = "exdesc" if route.startswith("/points/") else "World"  # a point attribute; the security entry
    url = route.replace("{webId}", owner["WebId"]).replace("{name}", name).replace("{key}", "WebIDType")
    url = url.replace("{searchId}", "never-created").replace("{id}", "00000000-0000-0000-0000-000000000000")
    database = sample["assetdatabases"]["WebId"]
    params: dict = {"time": "*"}
    if len(parts) == 1 and collection in sample and collection not in ("dataservers", "assetservers"):
        params["path"] = sample[collection]["Path"]
    if len(parts) == 2 and parts[1] == "multiple":
        params["webId"] = sample[collection]["WebId"]
    if len(parts) == 2 and parts[1] == "search":
        params |= {"databaseWebId": database, "query": "Name:'*'"}
    if collection == "streamsets" and "{webId}" not in route:
        params["webId"] = sample["points"]["WebId"]
    if route.endswith("/annotations/{id}"):
        return url, params  # an unknown annotation id: 404
    return url, params


@pytest.mark.parametrize("route", swagger_get_routes())
def test_every_swagger_get_route_of_a_served_controller_answers(simulator, http, sample, route):
    url, params = request_for(route, sample)
    response = http.get(simulator.url + url, params=params)
    if route in NOT_SIMULATED:
        assert response.status_code == 501, response.text
        assert "instead" in response.json()["Errors"][0]
    elif route in NEVER_CREATED or route.endswith("/annotations/{id}"):
        assert response.status_code == 404, response.text
        assert "was not found" in response.json()["Errors"][0]
    else:
        assert response.status_code == 200, response.text


@pytest.mark.parametrize("segment", ["search", "multiple", "nosuchaction"])
def test_unknown_literal_segments_are_404_not_invalid_webids(simulator, http, segment):
    """`/elements/search` on a route that has none reads as a missing resource, not "invalid WebID 'x'"."""
    for collection in ("assetservers", "dataservers"):
        body = get_json(http, f"{simulator.url}/{collection}/{segment}", expect=404)
        assert "was not found" in body["Errors"][0]
        assert "WebID" not in body["Errors"][0]


def test_multiple_answers_each_identifier_and_207_on_partial_failure(simulator, http, sample):
    element = sample["elements"]
    body = get_json(http, f"{simulator.url}/elements/multiple", webId=element["WebId"], path=element["Path"])
    assert [i["Object"]["Id"] for i in body["Items"]] == [element["Id"], element["Id"]]
    assert [i["IdentifierType"] for i in body["Items"]] == ["WebId", "Path"]
    response = http.get(f"{simulator.url}/elements/multiple", params={"path": [element["Path"], "\\\\nowhere\\x"]})
    assert response.status_code == 207
    assert response.json()["Items"][1]["Exception"]["Errors"]


def test_element_search_equals_the_filtered_listing(simulator, http, sample):
    database = sample["assetdatabases"]
    found = get_json(http, f"{simulator.url}/elements/search", databaseWebId=database["WebId"],
                     query="Template:Pump Name:'P-*'", maxCount=1000)["Items"]  # fmt: skip
    listed = get_json(http, database["Links"]["Elements"], searchFullHierarchy="true", templateName="Pump",
                      nameFilter="P-*", maxCount=1000)["Items"]  # fmt: skip
    assert found == listed
    assert found
    error = get_json(http, f"{simulator.url}/elements/search", expect=400, databaseWebId=database["WebId"],
                     query="Colour:red")["Errors"][0]  # fmt: skip
    assert "Colour" in error


def test_enumeration_sets_hold_every_digital_set_of_the_points(simulator, http, sample):
    points = get_json(http, sample["dataservers"]["Links"]["Points"], maxCount=10_000)["Items"]
    sets = get_json(http, sample["dataservers"]["Links"]["EnumerationSets"])["Items"]
    names = {s["Name"] for s in sets}
    assert {p["DigitalSetName"] for p in points if p["DigitalSetName"]} <= names
    assert "SYSTEM" in names
    system = next(s for s in sets if s["Name"] == "SYSTEM")
    states = {v["Name"]: v["Value"] for v in get_json(http, system["Links"]["Values"])["Items"]}
    assert states["No Data"] == 248


def test_attribute_categories_cover_every_category_an_attribute_carries(simulator, http, sample):
    listed = get_json(http, sample["assetdatabases"]["Links"]["AttributeCategories"])["Items"]
    names = {c["Name"] for c in listed}
    attributes = get_json(http, sample["elements"]["Links"]["Attributes"], showHidden="true", showExcluded="true")
    for attribute in attributes["Items"]:
        assert set(attribute["CategoryNames"]) <= names
        own = get_json(http, attribute["Links"]["Categories"])["Items"]
        assert [c["Name"] for c in own] == attribute["CategoryNames"]
