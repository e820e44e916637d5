"""WebIDs in the reference's layouts and types, checked with OSIsoft's own decoder.

References: PI Web API Reference, "WebID Encoded Datatypes"
(https://docs.aveva.com/bundle/pi-web-api-reference/page/help/topics/webid-encoded-datatypes.html):
Full/IDOnly WebIDs of AF objects carry the PI System GUID first, then the owner's and the object's GUIDs;
LocalIDOnly/DefaultIDOnly leave the system GUID and the path out. "WebID Type"
(https://docs.aveva.com/bundle/pi-web-api-reference/page/help/topics/webid-type.html): every GET takes
`webIdType` = Full | IDOnly | PathOnly | LocalIDOnly | DefaultIDOnly.
The decoder is `WebIdInfo` of osisoft-pidevclub-piwebapi (OSIsoft's client generated from the swagger).
"""

from __future__ import annotations

import pytest
import requests
from osisoft.pidevclub.piwebapi.models import PIAttribute, PIElement, PIEventFrame, PIPoint
from osisoft.pidevclub.piwebapi.web_id.web_id_helper import WebIdHelper
from osisoft.pidevclub.piwebapi.web_id.web_id_info import WebIdInfo

from tests.simulator.helpers import get_json

TYPES = {"Full": "F", "IDOnly": "I", "PathOnly": "P", "LocalIDOnly": "L", "DefaultIDOnly": "D"}


@pytest.fixture(scope="module")
def objects(simulator) -> dict[str, dict]:
    """One served object of each kind, with the AF server and the data server."""
    with requests.Session() as http:
        base = simulator.url
        af_server = get_json(http, f"{base}/assetservers")["Items"][0]
        database = get_json(http, af_server["Links"]["Databases"])["Items"][0]
        root = get_json(http, database["Links"]["Elements"])["Items"][0]
        attribute = get_json(http, root["Links"]["Attributes"])["Items"][0]
        frame = get_json(http, database["Links"]["EventFrames"], startTime="*-30d", maxCount=1)["Items"][0]
        frame_attribute = get_json(http, frame["Links"]["Attributes"])["Items"][0]
        data_server = get_json(http, f"{base}/dataservers")["Items"][0]
        point = get_json(http, data_server["Links"]["Points"], maxCount=1)["Items"][0]
        return {
            "af_server": af_server,
            "database": database,
            "element": root,
            "attribute": attribute,
            "frame": frame,
            "frame_attribute": frame_attribute,
            "data_server": data_server,
            "point": point,
        }


def test_osisoft_decoder_reads_every_af_webid(objects):
    """WebIdInfo splits each Full WebID into system, owner and object ids that match the served `Id`s."""
    system = objects["af_server"]["Id"]
    element = WebIdInfo(objects["element"]["WebId"])
    assert (element.server_id, element.object_id) == (system, objects["element"]["Id"])
    assert element.path == objects["element"]["Path"][2:].upper()
    attribute = WebIdInfo(objects["attribute"]["WebId"])
    assert attribute.owner_type is type(PIElement())
    assert (attribute.server_id, attribute.owner_id) == (system, objects["element"]["Id"])
    assert attribute.object_id == objects["attribute"]["Id"]
    assert attribute.path == objects["attribute"]["Path"][2:].upper()
    frame = WebIdInfo(objects["frame"]["WebId"])
    assert (frame.server_id, frame.object_id) == (system, objects["frame"]["Id"])
    frame_attribute = WebIdInfo(objects["frame_attribute"]["WebId"])
    assert frame_attribute.owner_type is type(PIEventFrame())
    assert (frame_attribute.server_id, frame_attribute.owner_id) == (system, objects["frame"]["Id"])
    database = WebIdInfo(objects["database"]["WebId"])
    assert (database.server_id, database.object_id) == (system, objects["database"]["Id"])
    point = WebIdInfo(objects["point"]["WebId"])
    assert (point.server_id, point.point_id) == (objects["data_server"]["Id"], objects["point"]["Id"])


@pytest.mark.parametrize(
    ("key", "kind", "owner"),
    [("element", PIElement, None), ("attribute", PIAttribute, PIElement), ("point", PIPoint, None)],
)
def test_webids_built_by_the_documented_path_form_are_accepted(simulator, http, objects, key, kind, owner):
    """`WebIdHelper.generate_web_id_by_path` (the PathOnly form clients may build themselves) names the object."""
    served = objects[key]
    built = WebIdHelper().generate_web_id_by_path(served["Path"], type(kind()), owner and type(owner()))
    collection = {"element": "elements", "attribute": "attributes", "point": "points"}[key]
    got = get_json(http, f"{simulator.url}/{collection}/{built}")
    assert got["Id"] == served["Id"]


@pytest.mark.parametrize("name", list(TYPES))
@pytest.mark.parametrize(("key", "collection"), [("element", "elements"), ("attribute", "attributes"),
                                                  ("point", "points"), ("frame", "eventframes"),
                                                  ("database", "assetdatabases"), ("data_server", "dataservers")])  # fmt: skip
def test_webid_type_is_honoured_and_every_type_resolves(simulator, http, objects, name, key, collection):
    served = objects[key]
    got = get_json(http, served["Links"]["Self"], webIdType=name)
    assert got["WebId"][0] == TYPES[name]
    assert got["Links"]["Self"].split("/")[-1] == got["WebId"]  # links carry the same type
    if TYPES[name] in "FI" and key not in ("data_server", "point"):
        assert WebIdInfo(got["WebId"]).server_id == objects["af_server"]["Id"]
    again = get_json(http, f"{simulator.url}/{collection}/{got['WebId']}")
    assert again["Id"] == served["Id"]


def test_webid_type_applies_to_collections_and_batch(simulator, http, objects):
    items = get_json(http, objects["element"]["Links"]["Elements"], webIdType="IDOnly")["Items"]
    assert items
    assert all(item["WebId"].startswith("I1Em") for item in items)
    body = {"a": {"Method": "GET", "Resource": objects["point"]["Links"]["Self"] + "?webIdType=PathOnly"}}
    response = http.post(f"{simulator.url}/batch", json=body)
    assert response.json()["a"]["Content"]["WebId"].startswith("P1DP")
    body = {"b": {"Method": "GET", "Resource": objects["point"]["Links"]["Self"] + "?webIdType=Tiny"}}
    assert http.post(f"{simulator.url}/batch", json=body).json()["b"]["Status"] == 400


def test_unknown_webid_type_is_refused_naming_the_valid_ones(simulator, http, objects):
    errors = get_json(http, objects["element"]["Links"]["Self"], expect=400, webIdType="Short")["Errors"]
    assert "webIdType" in errors[0]
    assert "DefaultIDOnly" in errors[0]


def test_id_only_webids_built_from_the_served_ids_are_accepted(simulator, http, objects):
    """IDOnly = type, version, marker, system GUID, object GUIDs ("WebID Encoded Datatypes"): a client can
    build one from the `Id`s it was served, without asking the server."""
    import uuid

    from osipi_connector.piwebapi import webid

    system = uuid.UUID(objects["af_server"]["Id"])
    element = uuid.UUID(objects["element"]["Id"])
    built = webid.encode("Em", (system, element), kind="I")
    assert get_json(http, f"{simulator.url}/elements/{built}")["Id"] == objects["element"]["Id"]
    attribute = webid.encode("AbE", (system, element, uuid.UUID(objects["attribute"]["Id"])), kind="I")
    assert get_json(http, f"{simulator.url}/attributes/{attribute}")["Id"] == objects["attribute"]["Id"]
    server = uuid.UUID(objects["data_server"]["Id"])
    point = webid.encode("DP", (server,), (objects["point"]["Id"],), kind="I")
    assert get_json(http, f"{simulator.url}/points/{point}")["Id"] == objects["point"]["Id"]
    local = webid.encode("Em", (element,), kind="L")  # LocalIDOnly: the system GUID left out
    assert get_json(http, f"{simulator.url}/elements/{local}")["Id"] == objects["element"]["Id"]
