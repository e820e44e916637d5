"""Asset Framework over real HTTP: servers, databases, the element tree, attributes, templates."""

from __future__ import annotations

import pytest

from osipi_connector.piwebapi import webid
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.core import Simulator
from osipi_connector.simulator.http import Request
from tests.simulator.helpers import get_json

ELEMENT_KEYS = {
    "WebId", "Id", "Name", "Description", "Path", "TemplateName", "HasChildren", "CategoryNames",
    "ExtendedProperties", "Links",
}  # fmt: skip
ATTRIBUTE_KEYS = {
    "WebId", "Id", "Name", "Description", "Path", "Type", "TypeQualifier", "DefaultUnitsName",
    "DefaultUnitsNameAbbreviation", "DataReferencePlugIn", "ConfigString", "IsConfigurationItem", "IsExcluded",
    "IsHidden", "IsManualDataEntry", "HasChildren", "CategoryNames", "Step", "TraitName", "Links",
}  # fmt: skip
EQUIPMENT = {"Pump", "Compressor", "HeatExchanger", "Tank", "Valve"}


@pytest.fixture(scope="module")
def database(simulator) -> dict:
    import requests

    with requests.Session() as http:
        server = get_json(http, f"{simulator.url}/assetservers")["Items"][0]
        return get_json(http, server["Links"]["Databases"])["Items"][0]


@pytest.fixture(scope="module")
def everything(simulator, database) -> list[dict]:
    """Every element, from one flat searchFullHierarchy call."""
    import requests

    with requests.Session() as http:
        return get_json(http, database["Links"]["Elements"], searchFullHierarchy="true", maxCount=10_000)["Items"]


def depth(path: str) -> int:
    return len(path.lstrip("\\").split("\\")) - 2  # below \\server\database


def parent_path(path: str) -> str:
    return path.rsplit("\\", 1)[0]


def equipment_elements(everything: list[dict]) -> list[dict]:
    return [e for e in everything if e["TemplateName"] in EQUIPMENT]


def test_asset_server_and_database(simulator, http, database):
    server = get_json(http, f"{simulator.url}/assetservers")["Items"][0]
    assert server["WebId"].startswith("F1RS")
    assert server["Name"] == "PISIM-AF"
    assert server["Path"] == "\\\\PISIM-AF"
    assert server["IsConnected"] is True
    assert set(server) >= {"Id", "ServerVersion", "Links"}
    assert get_json(http, server["Links"]["Self"])["WebId"] == server["WebId"]
    assert get_json(http, f"{simulator.url}/assetservers", name="pisim-af")["WebId"] == server["WebId"]
    assert database["WebId"].startswith("F1RD")
    assert database["Path"] == "\\\\PISIM-AF\\Plant"
    assert get_json(http, database["Links"]["Self"])["Name"] == "Plant"
    assert get_json(http, f"{simulator.url}/assetdatabases", path="\\\\PISIM-AF\\Plant")["WebId"] == database["WebId"]


def test_hierarchy_is_deep_and_consistent(http, database, everything):
    assert len(everything) == 1 + 2 + 4 + 16 + 125  # 500 tags, 4 per equipment, 8/4/3 fan-out
    assert all(set(e) == ELEMENT_KEYS for e in everything)  # children are never embedded
    by_path = {e["Path"]: e for e in everything}
    assert len(by_path) == len(everything)
    assert max(depth(p) for p in by_path) >= 5
    children: dict[str, list[str]] = {}
    for path, element in by_path.items():
        if depth(path) == 1:
            assert "Parent" not in element["Links"]
            continue
        assert parent_path(path) in by_path, path
        children.setdefault(parent_path(path), []).append(element["WebId"])
    for path, element in by_path.items():
        listed = get_json(http, element["Links"]["Elements"], maxCount=10_000)["Items"]
        assert sorted(e["WebId"] for e in listed) == sorted(children.get(path, []))
        assert element["HasChildren"] is bool(listed)
    leaf = next(e for e in everything if depth(e["Path"]) == 5)
    parent = get_json(http, leaf["Links"]["Parent"])
    assert parent["Path"] == parent_path(leaf["Path"])


def test_search_full_hierarchy_versus_children(http, database, everything):
    roots = get_json(http, database["Links"]["Elements"])["Items"]
    assert [e["Name"] for e in roots] == ["Enterprise"]
    sites = get_json(http, roots[0]["Links"]["Elements"])["Items"]
    assert [e["TemplateName"] for e in sites] == ["Site", "Site"]
    below = get_json(http, roots[0]["Links"]["Elements"], searchFullHierarchy="true", maxCount=10_000)["Items"]
    assert len(below) == len(everything) - 1
    names = [e["Name"].upper() for e in everything]
    assert names == sorted(names)


def test_paging_follows_next_until_exhausted(http, database, everything):
    seen: list[str] = []
    page = get_json(http, database["Links"]["Elements"], searchFullHierarchy="true", maxCount=17)
    while True:
        assert len(page["Items"]) <= 17
        seen += [e["WebId"] for e in page["Items"]]
        if "Next" not in page["Links"]:
            break
        page = get_json(http, page["Links"]["Next"])
    assert seen == [e["WebId"] for e in everything]
    assert page["Links"]["Last"].endswith("startIndex=136&maxCount=17")


def test_sort_order_and_fields(http, database, everything):
    url = database["Links"]["Elements"]
    down = get_json(http, url, searchFullHierarchy="true", maxCount=10_000, sortOrder="Descending")["Items"]
    assert [e["WebId"] for e in down] == [e["WebId"] for e in everything][::-1]
    by_template = get_json(http, url, searchFullHierarchy="true", maxCount=10_000, sortField="TemplateName")["Items"]
    templates = [e["TemplateName"].upper() for e in by_template]
    assert templates == sorted(templates)
    slim = get_json(http, url, selectedFields="Items.Name;Items.Path")["Items"]
    assert slim == [{"Name": "Enterprise", "Path": "\\\\PISIM-AF\\Plant\\Enterprise"}]


def test_name_template_category_and_description_filters(http, database, everything):
    url = database["Links"]["Elements"]

    def search(**params) -> list[dict]:
        return get_json(http, url, searchFullHierarchy="true", maxCount=10_000, **params)["Items"]

    pumps = search(nameFilter="p-00*")
    assert pumps
    assert all(e["Name"].startswith("P-00") and e["TemplateName"] == "Pump" for e in pumps)
    assert {e["Name"] for e in search(nameFilter="Unit 00?")} == {f"Unit {i:03d}" for i in range(1, 10)}
    assert len(search(templateName="Equipment")) == 125  # derived templates match their base
    assert {e["TemplateName"] for e in search(templateName="pump")} == {"Pump"}
    rotating = search(categoryName="Rotating Equipment")
    assert rotating
    assert {e["TemplateName"] for e in rotating} <= {"Pump", "Compressor"}
    assert all("Rotating Equipment" in e["CategoryNames"] for e in rotating)
    critical = search(categoryName="critical")
    assert 0 < len(critical) < 125
    assert [e["Name"] for e in search(descriptionFilter="Production site*")] == ["Houston", "Rotterdam"]
    assert search(templateName="NoSuchTemplate") == []
    assert search(elementType="Measurement") == []
    assert len(search(elementType="Any")) == len(everything)


def test_get_by_path_and_webid_kinds(simulator, http, everything):
    element = equipment_elements(everything)[0]
    by_path = get_json(http, f"{simulator.url}/elements", path=element["Path"].lower())
    assert by_path["WebId"] == element["WebId"]
    path_only = webid.encode("Em", path=element["Path"][2:], kind="P")
    assert get_json(http, f"{simulator.url}/elements/{path_only}")["WebId"] == element["WebId"]
    id_only = webid.encode("Em", webid.decode(element["WebId"]).guids, kind="I")
    assert get_json(http, f"{simulator.url}/elements/{id_only}")["Path"] == element["Path"]
    get_json(http, f"{simulator.url}/elements", expect=404, path=element["Path"] + "\\Nope")


def test_equipment_attributes_reference_their_points(http, everything):
    for element in equipment_elements(everything)[:12]:
        attributes = get_json(http, element["Links"]["Attributes"])["Items"]
        assert all(set(a) == ATTRIBUTE_KEYS for a in attributes)
        owned = [a for a in attributes if a["DataReferencePlugIn"] == "PI Point"]
        number = int(element["Name"].split("-")[1]) - 1  # equipment e owns points e*4 .. e*4+3
        expected_ids = set(range(number * 4 + 1, number * 4 + 5))
        point_ids = set()
        for attribute in owned:
            assert attribute["Path"] == f"{element['Path']}|{attribute['Name']}"
            assert webid.decode(attribute["WebId"]).marker == "AbE"
            point = get_json(http, attribute["Links"]["Point"])
            assert point["Path"] == attribute["ConfigString"]
            assert point["EngineeringUnits"] == attribute["DefaultUnitsNameAbbreviation"]
            point_ids.add(point["Id"])
        assert point_ids == expected_ids
        static = [a for a in attributes if a["DataReferencePlugIn"] == ""]
        assert {"Manufacturer", "Model"} <= {a["Name"] for a in static}
        assert all(a["ConfigString"] == "" and "Point" not in a["Links"] for a in static)


def test_higher_levels_have_static_attributes(http, everything):
    site = next(e for e in everything if e["TemplateName"] == "Site")
    names = {a["Name"] for a in get_json(http, site["Links"]["Attributes"])["Items"]}
    assert {"Site Code", "Location", "Latitude", "Longitude"} <= names


def test_attribute_filters(http, everything):
    url = equipment_elements(everything)[0]["Links"]["Attributes"]

    def names(**params) -> set[str]:
        return {a["Name"] for a in get_json(http, url, **params)["Items"]}

    default = names()
    assert "Asset ID" not in default
    assert "Legacy Tag" not in default
    assert "Asset ID" in names(showHidden="true")
    assert "Legacy Tag" in names(showExcluded="true")
    assert names(nameFilter="manu*") == {"Manufacturer"}
    nameplate = names(categoryName="Nameplate")
    assert {"Manufacturer", "Model"} <= nameplate
    assert nameplate | names(categoryName="Process Data") == default
    assert names(templateName="Equipment") == names(categoryName="Nameplate")  # only templated attributes
    assert names(valueType="String") >= {"Manufacturer", "Model"}
    get_json(http, url, expect=400, valueType="Spaceship")
    page = get_json(http, url, maxCount=2)
    assert len(page["Items"]) == 2
    assert "Next" in page["Links"]


def test_attribute_by_webid_and_path(simulator, http, everything):
    element = equipment_elements(everything)[3]
    attribute = get_json(http, element["Links"]["Attributes"])["Items"][0]
    assert get_json(http, attribute["Links"]["Self"]) == attribute
    assert get_json(http, f"{simulator.url}/attributes", path=attribute["Path"])["WebId"] == attribute["WebId"]
    assert get_json(http, attribute["Links"]["Element"])["WebId"] == element["WebId"]
    assert get_json(http, element["Links"]["DefaultAttribute"])["WebId"].startswith("F1AbE")


def test_stream_source(simulator, http, everything):
    af = simulator.sim.af
    element = equipment_elements(everything)[0]
    attributes = get_json(http, element["Links"]["Attributes"])["Items"]
    point_attribute = next(a for a in attributes if a["DataReferencePlugIn"] == "PI Point")
    source = af.stream_source(point_attribute["WebId"])
    assert source is not None
    assert simulator.sim.points.path(source.point_index) == point_attribute["ConfigString"]
    assert source.static_value is None
    assert (source.name, source.path) == (point_attribute["Name"], point_attribute["Path"])
    assert source.units == point_attribute["DefaultUnitsNameAbbreviation"]
    static = next(a for a in attributes if a["Name"] == "Manufacturer")
    source = af.stream_source(static["WebId"])
    assert source.point_index is None
    assert isinstance(source.static_value, str)
    value = get_json(http, static["Links"]["Value"])
    assert value["Value"] == source.static_value
    for foreign in (element["WebId"], simulator.sim.points.webid(0), "F1AbEnonsense", "garbage", ""):
        assert af.stream_source(foreign) is None


def test_templates_and_categories(http, database, everything):
    templates = get_json(http, database["Links"]["ElementTemplates"])["Items"]
    by_name = {t["Name"]: t for t in templates}
    assert {"Enterprise", "Site", "Area", "ProcessUnit", "Equipment", "Batch", "Downtime", "Alarm"} <= set(by_name)
    assert set(by_name) >= EQUIPMENT
    assert by_name["Pump"]["BaseTemplate"] == "Equipment"
    assert by_name["Batch"]["InstanceType"] == "EventFrame"
    assert by_name["Site"]["InstanceType"] == "Element"
    element = equipment_elements(everything)[0]
    assert get_json(http, element["Links"]["Template"])["Name"] == element["TemplateName"]
    categories = [c["Name"] for c in get_json(http, database["Links"]["ElementCategories"])["Items"]]
    assert categories == sorted(categories, key=str.upper)
    assert {name for e in everything for name in e["CategoryNames"]} <= set(categories)
    own = get_json(http, element["Links"]["Categories"])["Items"]
    assert [c["Name"] for c in own] == element["CategoryNames"]


def test_errors(simulator, http, database, everything):
    base = simulator.url
    element = everything[0]
    unknown = webid.encode(
        "Em", (simulator.sim.ids.system_guid("Em"), simulator.sim.ids.guid("element", 99_999)), path="X"
    )
    cases = [
        (f"{base}/elements/{unknown}", {}, 404),
        (f"{base}/elements/F1EmNotBase64!!", {}, 400),
        (f"{base}/elements/{simulator.sim.points.webid(0)}", {}, 400),  # a point is not an element
        (f"{base}/elements/{element['WebId']}/elements", {"searchFullHierarchy": "maybe"}, 400),
        (f"{base}/elements/{element['WebId']}/elements", {"sortOrder": "Sideways"}, 400),
        (f"{base}/elements/{element['WebId']}/elements", {"sortField": "Colour"}, 400),
        (f"{base}/elements/{element['WebId']}/elements", {"elementType": "Bogus"}, 400),
        (f"{base}/elements/{element['WebId']}/elements", {"maxCount": "0"}, 400),
        (f"{base}/elements", {}, 400),
        (f"{base}/attributes/{element['WebId']}", {}, 400),
        (f"{base}/assetdatabases/{element['WebId']}", {}, 400),
        (f"{base}/elements/{element['WebId']}/attributes", {"showHidden": "yes"}, 400),
    ]
    for url, params, status in cases:
        body = get_json(http, url, expect=status, **params)
        assert isinstance(body["Errors"], list), url
        assert body["Errors"], url


def test_max_count_above_server_cap_is_400():
    sim = Simulator(SimConfig(seed=7, tags=100, max_returned_items_per_call=50))
    db = sim.af.database_webid
    ok = sim.handle(Request("GET", f"/assetdatabases/{db}/elements", [("maxCount", "50")]))
    too_many = sim.handle(Request("GET", f"/assetdatabases/{db}/elements", [("maxCount", "51")]))
    assert (ok.status, too_many.status) == (200, 400)
    assert "maximum" in too_many.body["Errors"][0]


def fetch_all(sim: Simulator, order: list[str]) -> dict[str, bytes]:
    """Encoded answers of a few AF calls, made in the given order."""
    db, element = sim.af.database_webid, sim.af.webid(sim.af.total - 1)
    calls = {
        "tree": (f"/assetdatabases/{db}/elements", [("searchFullHierarchy", "true"), ("maxCount", "10000")]),
        "attributes": (f"/elements/{element}/attributes", [("showHidden", "true")]),
        "element": (f"/elements/{element}", []),
    }
    return {name: sim.handle(Request("GET", *calls[name])).encode() for name in order}


def test_same_seed_same_bytes_in_any_order():
    first = fetch_all(Simulator(SimConfig(seed=11, tags=300)), ["tree", "attributes", "element"])
    second = fetch_all(Simulator(SimConfig(seed=11, tags=300)), ["element", "attributes", "tree"])
    assert first == second
    assert fetch_all(Simulator(SimConfig(seed=12, tags=300)), ["tree"])["tree"] != first["tree"]


def test_large_catalogue_is_lazy():
    """100,000 tags: nothing is generated up front, and a page of elements generates no point (speed
    itself is measured in benchmarks, not asserted in tests)."""
    sim = Simulator(SimConfig(seed=3, tags=100_000))
    assert sim.points.point.cache_info().currsize == 0
    af = sim.af
    assert af.counts == (1, 261, 782, 3125, 25_000)
    db = af.database_webid
    response = sim.handle(Request("GET", f"/assetdatabases/{db}/elements", [("searchFullHierarchy", "true")]))
    assert response.status == 200
    assert len(response.body["Items"]) == 1000
    assert response.body["Links"]["Last"].endswith(f"startIndex={af.total // 1000 * 1000}&maxCount=1000")
    assert sim.points.point.cache_info().currsize == 0
