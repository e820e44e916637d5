"""Analyses, analysis templates, AF tables, analysis/table categories and units of measure over real HTTP, with
the fields of PI Web API's reference samples (docs.aveva.com, bundle pi-web-api-reference):
controllers/analysis/actions/get, controllers/analysistemplate/actions/get, controllers/table/actions/get and
getdata, controllers/unitclass/actions/get, getunits and getcanonicalunit, controllers/unit/actions/get."""

from __future__ import annotations

import pytest
import requests

from tests.simulator.helpers import get_json

ANALYSIS_KEYS = {
    "WebId", "Id", "Name", "Description", "Path", "AnalysisRulePlugInName", "AutoCreated", "CategoryNames",
    "GroupId", "HasNotification", "HasTarget", "HasTemplate", "IsConfigured", "IsTimeRuleDefinedByTemplate",
    "MaximumQueueSize", "OutputTime", "Priority", "PublishResults", "Status", "TargetWebId", "TemplateName",
    "TimeRulePlugInName", "Links",
}  # fmt: skip
ANALYSIS_TEMPLATE_KEYS = {
    "WebId", "Id", "Name", "Description", "Path", "AnalysisRulePlugInName", "CategoryNames", "CreateEnabled",
    "GroupId", "HasNotificationTemplate", "HasTarget", "OutputTime", "TargetName", "TimeRulePlugInName", "Links",
}  # fmt: skip
TABLE_KEYS = {"WebId", "Id", "Name", "Description", "Path", "CategoryNames", "TimeZone", "ConvertToLocalTime", "Links"}
UNIT_CLASS_KEYS = {
    "WebId",
    "Id",
    "Name",
    "Description",
    "CanonicalUnitName",
    "CanonicalUnitAbbreviation",
    "Path",
    "Links",
}
UNIT_KEYS = {
    "WebId", "Id", "Name", "Abbreviation", "Description", "Path", "Factor", "Offset", "ReferenceFactor",
    "ReferenceOffset", "ReferenceUnitAbbreviation", "Links",
}  # fmt: skip


@pytest.fixture(scope="module")
def database(simulator) -> dict:
    with requests.Session() as http:
        return get_json(http, f"{simulator.url}/assetdatabases", path="\\\\PISIM-AF\\Plant")


def test_analyses_have_the_reference_fields_and_link_to_their_target_and_template(simulator, http, database):
    base = f"{simulator.url}/assetdatabases/{database['WebId']}"
    analyses = get_json(http, f"{base}/analyses")["Items"]
    assert analyses
    assert all(set(a) == ANALYSIS_KEYS for a in analyses)
    for a in analyses:
        assert get_json(http, a["Links"]["Self"]) == a
        target = get_json(http, a["Links"]["Target"])
        assert a["Path"].startswith(target["Path"] + "\\Analyses[")
        assert a["Id"] in {
            x["Id"] for x in get_json(http, f"{simulator.url}/elements/{a['TargetWebId']}/analyses")["Items"]
        }
        if a["HasTemplate"]:
            template = get_json(http, a["Links"]["Template"])
            assert set(template) == ANALYSIS_TEMPLATE_KEYS
            assert (template["Name"], template["TargetName"]) == (a["TemplateName"], target["TemplateName"])
        names = {c["Name"] for c in get_json(http, a["Links"]["Categories"])["Items"]}
        assert names == set(a["CategoryNames"])
    page = get_json(http, f"{base}/analyses", startIndex=2, maxCount=3)["Items"]
    assert page == analyses[2:5]


def test_an_element_template_lists_its_analysis_templates(simulator, http, database):
    templates = get_json(http, database["Links"]["ElementTemplates"])["Items"]
    pump = next(t for t in templates if t["Name"] == "Pump")
    own = get_json(http, pump["Links"]["AnalysisTemplates"])["Items"]
    assert [t["TargetName"] for t in own] == ["Pump"]


def test_tables_serve_their_data_as_columns_and_rows(simulator, http, database):
    tables = get_json(http, f"{simulator.url}/assetdatabases/{database['WebId']}/tables")["Items"]
    assert tables
    assert all(set(t) == TABLE_KEYS for t in tables)
    for t in tables:
        data = get_json(http, t["Links"]["Data"])
        assert set(data) == {"Columns", "Rows"}
        assert data["Rows"]
        assert all(set(row) == set(data["Columns"]) for row in data["Rows"])
    assert get_json(http, tables[0]["Links"]["Data"], selectedFields="Columns").keys() == {"Columns"}


def test_unit_classes_list_their_units_with_the_canonical_one(simulator, http):
    server = get_json(http, f"{simulator.url}/assetservers")["Items"][0]
    classes = get_json(http, f"{simulator.url}/assetservers/{server['WebId']}/unitclasses")["Items"]
    assert {"Temperature", "Pressure", "Volume Flow Rate", "Power"} <= {c["Name"] for c in classes}
    for c in classes:
        assert set(c) == UNIT_CLASS_KEYS
        units = get_json(http, c["Links"]["Units"])["Items"]
        assert all(set(u) == UNIT_KEYS for u in units)
        canonical = get_json(http, c["Links"]["CanonicalUnit"])
        assert (canonical["Name"], canonical["Abbreviation"]) == (
            c["CanonicalUnitName"],
            c["CanonicalUnitAbbreviation"],
        )
        assert (canonical["Factor"], canonical["Offset"], canonical["ReferenceUnitAbbreviation"]) == (1.0, 0.0, "")
        assert get_json(http, units[-1]["Links"]["Self"]) == units[-1]
    celsius = next(
        u for c in classes for u in get_json(http, c["Links"]["Units"])["Items"] if u["Abbreviation"] == "°C"
    )
    assert 25 * celsius["Factor"] + celsius["Offset"] == pytest.approx(298.15)


def test_categories_of_analyses_and_tables(simulator, http, database):
    for collection in ("analysiscategories", "tablecategories"):
        items = get_json(http, f"{simulator.url}/assetdatabases/{database['WebId']}/{collection}")["Items"]
        assert items
        assert all(get_json(http, c["Links"]["Self"]) == c for c in items)


@pytest.mark.parametrize("collection", ["analyses", "analysistemplates", "tables", "unitclasses", "units"])
def test_a_webid_of_another_kind_is_a_400(simulator, http, database, collection):
    get_json(http, f"{simulator.url}/{collection}/{database['WebId']}", expect=400)
