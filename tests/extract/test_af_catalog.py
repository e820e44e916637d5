"""The AF catalogue datasets end to end with the delta-rs sink: templates with their attribute templates,
categories, analyses and analysis templates, AF tables and rows, event-frame annotations and units of measure,
from the simulator over HTTP into Delta tables whose rows equal what the simulator's own endpoints serve
(asked directly, one GET per object, not through /batch); a re-run changes nothing; a killed run is repaired.

The simulator serves PI Web API's documented shapes (docs.aveva.com, bundle pi-web-api-reference):
controllers/analysis/actions/get, controllers/analysistemplate/actions/get, controllers/table/actions/get and
getdata (TableData: Columns + Rows), controllers/unitclass/actions/get and getunits, controllers/unit/actions/get,
controllers/eventframe/actions/getannotations, controllers/elementtemplate/actions/getattributetemplates.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest
import requests

from osipi_connector import PILakeflowConnector
from osipi_connector.config import ConfigError
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import (
    AF_CATALOG_TABLES,
    AF_TABLE_ROWS,
    AF_TABLES,
    ANALYSES,
    ANALYSIS_TEMPLATES,
    ATTRIBUTE_TEMPLATES,
    CATEGORIES,
    ELEMENT_TEMPLATES,
    EVENT_FRAME_ANNOTATIONS,
    UNITS_OF_MEASURE,
    WATERMARKS,
    TableSpec,
)
from osipi_connector.lake.sink import WriteResult
from osipi_connector.piwebapi.pitime import format_datetime, parse_iso
from tests.conftest import FIXED_NOW

pytestmark = pytest.mark.integration
DATABASE = "\\\\PISIM-AF\\Plant"
START, END = FIXED_NOW - timedelta(days=2), FIXED_NOW
DATASETS = ["templates", "categories", "analyses", "af_tables", "annotations", "units_of_measure"]
SPECS = AF_CATALOG_TABLES


def config(url: str, root: Path, **extraction: object) -> dict:
    return {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {
            "af_database": DATABASE,
            "tag_names": ["SINUSOID"],  # the catalogue reads no tags; the config needs a selection
            "mode": "full",
            "start_date": format_datetime(START),
            "end_date": format_datetime(END),
            **extraction,
        },
        "local": {"lakehouse_root": str(root)},
    }


def content(sink: DeltaSink, spec: TableSpec) -> list[dict]:
    rows = sink.read(spec).drop_columns(["ingested_at", "run_id"]).to_pylist()
    return sorted(rows, key=lambda r: tuple(str(v) for v in r.values()))


def stored(sink: DeltaSink, spec: TableSpec, *columns: str) -> set[tuple]:
    return {tuple(_hashable(r[c]) for c in columns) for r in sink.read(spec).to_pylist()}


def _hashable(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value


@pytest.fixture(scope="module")
def database(simulator) -> dict:
    return requests.get(f"{simulator.url}/assetdatabases", params={"path": DATABASE}).json()


@pytest.fixture(scope="module")
def landed(simulator, tmp_path_factory) -> tuple[DeltaSink, object]:
    root = tmp_path_factory.mktemp("lake")
    sink = DeltaSink(root)
    result = PILakeflowConnector(config(simulator.url, root), sink=sink).run(datasets=DATASETS)
    return sink, result


def items(http, url: str) -> list[dict]:
    answer = http.get(url)
    answer.raise_for_status()
    return answer.json()["Items"]


def test_the_run_succeeds_and_counts_its_rows(landed) -> None:
    sink, result = landed
    assert result.status == "success", result.errors
    for spec in SPECS:
        assert result.rows[spec.name] == sink.read(spec).num_rows > 0, spec.name


def test_templates_and_their_attribute_templates_equal_what_pi_serves(landed, database, http) -> None:
    sink, _ = landed
    templates = items(http, database["Links"]["ElementTemplates"])
    assert {t["InstanceType"] for t in templates} == {"Element", "EventFrame"}  # event-frame templates too
    expected = {
        (t["Id"], t["Name"], t["InstanceType"], t["BaseTemplate"] or None, tuple(t["CategoryNames"])) for t in templates
    }
    assert (
        stored(sink, ELEMENT_TEMPLATES, "template_id", "template_name", "instance_type", "base_template", "categories")
        == expected
    )
    attributes = set()
    for t in templates:
        for a in items(http, t["Links"]["AttributeTemplates"]):
            units = a["DefaultUnitsName"] or None
            attributes.add(
                (a["Id"], t["Id"], a["Name"], a["Type"], units, json.dumps(a["DefaultValue"]), a["IsHidden"])
            )
    columns = (
        "attribute_template_id",
        "template_id",
        "attribute_name",
        "type",
        "default_units",
        "default_value",
        "is_hidden",
    )
    landed_rows = {(*r[:5], json.dumps(json.loads(r[5])), r[6]) for r in stored(sink, ATTRIBUTE_TEMPLATES, *columns)}
    assert landed_rows == attributes
    frame_templates = {t["Id"] for t in templates if t["InstanceType"] == "EventFrame"}
    assert frame_templates <= {r[1] for r in attributes}  # every event-frame template defines attributes


def test_categories_of_the_four_kinds_equal_what_pi_serves(landed, database, simulator, http) -> None:
    sink, _ = landed
    expected = set()
    for kind, path in (
        ("Element", "elementcategories"),
        ("Attribute", "attributecategories"),
        ("Analysis", "analysiscategories"),
        ("Table", "tablecategories"),
    ):
        found = items(http, f"{simulator.url}/assetdatabases/{database['WebId']}/{path}")
        assert found, kind
        expected |= {(kind, c["Id"], c["Name"], c["Description"] or None) for c in found}
    assert stored(sink, CATEGORIES, "category_type", "category_id", "category_name", "description") == expected


def test_analyses_and_their_templates_equal_what_pi_serves(landed, database, simulator, http) -> None:
    sink, _ = landed
    base = f"{simulator.url}/assetdatabases/{database['WebId']}"
    analyses = items(http, f"{base}/analyses")
    expected = {
        (a["Id"], a["Name"], a["Path"], a["TargetWebId"], a["TemplateName"] or None, a["AnalysisRulePlugInName"],
         a["TimeRulePlugInName"], a["Status"], tuple(a["CategoryNames"]))
        for a in analyses
    }  # fmt: skip
    columns = ("analysis_id", "analysis_name", "path", "target_webid", "template_name", "analysis_rule", "time_rule",
               "status", "categories")  # fmt: skip
    assert stored(sink, ANALYSES, *columns) == expected
    assert {a["TemplateName"] for a in analyses} > {""}  # built from templates, and one without
    for a in analyses[:3]:  # each is one of its target element's analyses
        assert a["Id"] in {x["Id"] for x in items(http, f"{simulator.url}/elements/{a['TargetWebId']}/analyses")}
    templates = items(http, f"{base}/analysistemplates")
    expected_templates = {(t["Id"], t["Name"], t["TargetName"], t["AnalysisRulePlugInName"]) for t in templates}
    columns = ("analysis_template_id", "analysis_template_name", "target_template_name", "analysis_rule")
    assert stored(sink, ANALYSIS_TEMPLATES, *columns) == expected_templates


def test_af_tables_and_every_row_equal_what_pi_serves(landed, database, simulator, http) -> None:
    sink, _ = landed
    tables = items(http, f"{simulator.url}/assetdatabases/{database['WebId']}/tables")
    expected_tables, expected_rows = set(), set()
    for t in tables:
        data = http.get(t["Links"]["Data"]).json()
        expected_tables.add((t["Id"], t["Name"], json.dumps(data["Columns"], sort_keys=True), len(data["Rows"])))
        expected_rows |= {(t["Id"], i, json.dumps(row, sort_keys=True)) for i, row in enumerate(data["Rows"])}
    landed_tables = {
        (i, name, json.dumps(json.loads(cols), sort_keys=True), n)
        for i, name, cols, n in stored(sink, AF_TABLES, "table_id", "table_name", "columns", "row_count")
    }
    assert landed_tables == expected_tables
    landed_rows = {
        (t, i, json.dumps(json.loads(row), sort_keys=True))
        for t, i, row in stored(sink, AF_TABLE_ROWS, "table_id", "row_index", "row")
    }
    assert landed_rows == expected_rows


def served_annotations(http, url: str, database: dict, start, end) -> set[tuple]:
    params = {"searchMode": "Overlapped", "startTime": format_datetime(start), "endTime": format_datetime(end),
              "searchFullHierarchy": "true", "maxCount": 10_000}  # fmt: skip
    frames = http.get(f"{url}/assetdatabases/{database['WebId']}/eventframes", params=params).json()["Items"]
    assert len(frames) < 10_000
    out = set()
    for f in frames:
        for a in items(http, f"{url}/eventframes/{f['WebId']}/annotations"):
            out.add((f["Id"], a["Id"], f["Name"], a["Value"], a["Creator"], parse_iso(a["CreationDate"])))
    return out


def test_annotations_of_the_frames_in_the_window_equal_what_pi_serves(landed, database, simulator, http) -> None:
    sink, _ = landed
    expected = served_annotations(http, simulator.url, database, START, END)
    assert expected
    columns = ("event_frame_id", "annotation_id", "event_name", "value", "creator", "creation_date")
    assert stored(sink, EVENT_FRAME_ANNOTATIONS, *columns) == expected
    marks = [r for r in sink.read(WATERMARKS).to_pylist() if r["dataset"] == "annotations"]
    assert [(m["low_watermark"], m["high_watermark"], m["last_status"]) for m in marks] == [(START, END, "ok")]


def test_units_of_measure_equal_the_uom_database_pi_serves(landed, simulator, http) -> None:
    sink, _ = landed
    server = items(http, f"{simulator.url}/assetservers")[0]
    expected = set()
    for c in items(http, f"{simulator.url}/assetservers/{server['WebId']}/unitclasses"):
        for u in items(http, c["Links"]["Units"]):
            canonical = u["Name"] == c["CanonicalUnitName"]
            expected.add((u["Id"], c["Name"], u["Name"], u["Abbreviation"], u["Factor"], u["Offset"], canonical))
    columns = ("uom_id", "class_name", "uom_name", "abbreviation", "factor", "offset", "is_canonical")
    assert stored(sink, UNITS_OF_MEASURE, *columns) == expected
    assert {"Temperature", "Pressure", "Volume Flow Rate"} <= {row[1] for row in expected}


def test_a_rerun_full_or_incremental_changes_nothing(landed, simulator) -> None:
    sink, _ = landed
    before = {spec.name: content(sink, spec) for spec in SPECS}
    for mode in ("full", "incremental"):
        again = PILakeflowConnector(config(simulator.url, Path("unused"), mode=mode), sink=sink).run(datasets=DATASETS)
        assert again.status == "success", again.errors
        assert {spec.name: content(sink, spec) for spec in SPECS} == before, mode


class CrashOn(DeltaSink):
    """Dies on the MERGE into one table: the MERGEs before it have committed."""

    table = ""

    def merge(self, spec: TableSpec, data: pa.Table, **hints) -> WriteResult:
        if spec.name == self.table:
            raise OSError(f"simulated crash before the {self.table} commit")
        return super().merge(spec, data, **hints)


@pytest.mark.parametrize(
    ("dataset", "killed", "landed_first"),
    [
        ("templates", ATTRIBUTE_TEMPLATES, ELEMENT_TEMPLATES),
        ("af_tables", AF_TABLE_ROWS, AF_TABLES),
        ("annotations", WATERMARKS, EVENT_FRAME_ANNOTATIONS),
    ],
)
def test_a_killed_run_is_repaired_by_the_next(simulator, tmp_path, dataset, killed, landed_first) -> None:
    cfg = config(simulator.url, tmp_path / "lake", mode="incremental")
    crashing = type("Crash", (CrashOn,), {"table": killed.name})(tmp_path / "lake")
    crashed = PILakeflowConnector(cfg, sink=crashing).run(datasets=[dataset])
    assert crashed.status != "success"
    assert any("simulated crash" in e for e in crashed.errors)
    sink = DeltaSink(tmp_path / "lake")
    assert sink.read(landed_first).num_rows  # the first table landed, the killed one did not
    assert not [r for r in sink.read(killed).to_pylist() if killed is not WATERMARKS or r["dataset"] == dataset]
    repaired = PILakeflowConnector(cfg, sink=sink).run(datasets=[dataset])
    assert repaired.status == "success", repaired.errors
    clean = DeltaSink(tmp_path / "clean")
    PILakeflowConnector(config(simulator.url, tmp_path / "clean"), sink=clean).run(datasets=[dataset])
    for spec in [landed_first, killed]:
        if spec is not WATERMARKS:
            assert content(sink, spec) == content(clean, spec), spec.name


def test_the_datasets_are_off_unless_configured_and_need_an_af_database(simulator, tmp_path) -> None:
    sink = DeltaSink(tmp_path)
    quiet = {"include_af": False, "include_event_frames": False}
    short = {"start_date": format_datetime(END - timedelta(minutes=5))}
    result = PILakeflowConnector(config(simulator.url, tmp_path, **quiet, **short), sink=sink).run()
    assert not set(result.rows) & {spec.name for spec in SPECS}
    on = {"include_units_of_measure": True, "include_categories": True}
    result = PILakeflowConnector(config(simulator.url, tmp_path, **quiet, **short, **on), sink=sink).run()
    assert set(result.rows) & {spec.name for spec in SPECS} == {UNITS_OF_MEASURE.name, CATEGORIES.name}
    without = config(simulator.url, tmp_path, **on)
    without["extraction"]["af_database"] = None
    with pytest.raises(ConfigError, match=r"extraction\.af_database"):
        PILakeflowConnector(without, sink=sink).run()
    with pytest.raises(ConfigError, match=r"extraction\.af_database"):
        PILakeflowConnector(without, sink=sink).run(datasets=["analyses"])
