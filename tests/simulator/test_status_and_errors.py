"""`/system/status` carries ServerTime (System Status,
https://docs.aveva.com/bundle/pi-web-api-reference/page/help/controllers/system/actions/status.html),
point attributes are the classic point class's full table (Point GetAttributes,
https://docs.aveva.com/bundle/pi-web-api-reference/page/help/controllers/point/actions/getattributes.html),
and error messages speak PI, never Python."""

from __future__ import annotations

import pytest

from tests.simulator.helpers import get_json

STANDARD_ATTRIBUTES = {
    "tag", "descriptor", "exdesc", "pointtype", "pointsource", "ptclassname", "engunits", "digitalset", "zero",
    "span", "typicalvalue", "displaydigits", "step", "future", "archiving", "compressing", "compdev",
    "compdevpercent", "compmax", "compmin", "excdev", "excdevpercent", "excmax", "excmin", "scan", "shutdown",
    "location1", "location2", "location3", "location4", "location5", "instrumenttag", "sourcetag", "userint1",
    "userint2", "userreal1", "userreal2", "convers", "filtercode", "squareroot", "totalcode", "srcptid", "pointid",
    "recno", "creationdate", "creator", "changedate", "changer", "ptsecurity", "datasecurity", "ptowner",
    "ptgroup", "ptaccess", "dataowner", "datagroup", "dataaccess",
}  # fmt: skip
PYTHON_WORDS = ("Traceback", "bytes_le", "unpack", "NoneType", "object has no", "Error:", "errno", "buffer")


def test_status_has_the_server_time(simulator, http):
    status = get_json(http, f"{simulator.url}/system/status")
    assert status["ServerTime"] == "2025-03-01T12:00:00Z"  # the session's fixed clock
    assert status["State"] == "Running"


def test_point_attributes_are_the_full_classic_table(simulator, http):
    point = get_json(http, f"{simulator.url}/points", path="\\\\PISIM\\SINUSOID")
    table = {a["Name"]: a["Value"] for a in get_json(http, point["Links"]["Attributes"])["Items"]}
    assert set(table) >= STANDARD_ATTRIBUTES
    assert table["creationdate"].startswith("2024-01-01T")
    assert table["pointsource"] == "R"
    assert table["exdesc"] == ""


@pytest.mark.parametrize(
    "path",
    [
        "/points/I1DSAAAA",
        "/points/F1DP" + "A" * 25,
        "/elements/F1Em" + "A" * 44 + "_w",
        "/streams/{point}/recorded?startTime=*-99999999d",
        "/streams/{point}/recorded?startTime=2025-13-45",
        "/streams/{point}/interpolated?interval=0s",
        "/streams/{point}/recorded?timeZone=Mars/Olympus",
    ],
)
def test_errors_name_the_problem_without_python_internals(simulator, http, path):
    point = get_json(http, f"{simulator.url}/points", path="\\\\PISIM\\SINUSOID")["WebId"]
    response = http.get(simulator.url + path.replace("{point}", point))
    assert response.status_code == 400
    text = " ".join(response.json()["Errors"])
    assert not [word for word in PYTHON_WORDS if word in text], text


def test_versions_are_keyed_by_assembly(simulator, http):
    """System Versions (https://docs.aveva.com/bundle/pi-web-api-reference/page/help/controllers/system/actions/versions.html)."""
    versions = get_json(http, f"{simulator.url}/system/versions")
    core = versions["OSIsoft.REST.Core"]
    assert core["FullVersion"] == f"{core['MajorMinorRevision']}.{core['Build']}"
    system = get_json(http, f"{simulator.url}/system")
    assert core["FullVersion"] == system["ProductVersion"]
