"""pi_interpolated, pi_summary, pi_current_value and pi_point_attributes end to end with the delta-rs sink:
the simulator over HTTP -> the run -> Delta tables whose values equal what the simulator's own endpoints serve
(asked directly, one request per tag, not through /batch); a re-run changes nothing; a run killed between the
data and the watermarks is repaired by the next; windows and grids are aligned so runs agree on grid points."""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from pathlib import Path

import pyarrow as pa
import pytest

from osipi_connector import PILakeflowConnector
from osipi_connector.config import ConfigError, ConnectorConfig
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import (
    CURRENT_VALUE,
    INTERPOLATED,
    POINT_ATTRIBUTES,
    SUMMARY,
    WATERMARKS,
    TableSpec,
)
from osipi_connector.lake.sink import WriteResult
from osipi_connector.piwebapi.pitime import format_datetime, parse_iso
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.server import running_simulator
from tests.conftest import FIXED_NOW

pytestmark = pytest.mark.integration
END = FIXED_NOW - timedelta(minutes=10)  # 11:50, 06:20: not on the grids, the runs align the windows
START = END - timedelta(hours=5, minutes=30)
GRID = (START + timedelta(minutes=10), END - timedelta(minutes=20))  # 06:30 .. 11:30 every 30 min
INTERVALS = (START - timedelta(minutes=20), END - timedelta(minutes=50))  # 06:00 .. 11:00, hourly
DATASETS = ["interpolated", "summary", "current_value", "point_attributes"]
TYPES = ["Average", "Minimum", "Maximum", "Count", "PercentGood"]
SPECS = (INTERPOLATED, SUMMARY, CURRENT_VALUE, POINT_ATTRIBUTES)


def config(url: str, root: Path, tags: list[str], **extraction: object) -> dict:
    return {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {
            "tag_names": tags,
            "mode": "full",
            "start_date": format_datetime(START),
            "end_date": format_datetime(END),
            "batch_size": 3,
            "max_count_per_tag": 4,  # several pieces per tag: paging is exercised
            "interpolated": {"interval": "30m"},
            "summary": {"duration": "1h", "types": TYPES},
            **extraction,
        },
        "local": {"lakehouse_root": str(root)},
    }


def content(sink: DeltaSink, spec: TableSpec) -> list[dict]:
    rows = sink.read(spec).drop_columns(["ingested_at", "run_id"]).to_pylist()
    return sorted(rows, key=lambda r: tuple(str(v) for v in r.values()))


def marks(sink: DeltaSink, dataset: str) -> dict[str, tuple]:
    return {
        r["item_id"]: (r["low_watermark"], r["high_watermark"], r["last_status"])
        for r in sink.read(WATERMARKS).to_pylist()
        if r["dataset"] == dataset
    }


def served_value(item: dict) -> tuple:
    """(value, value_string, digital state name) of a TimedValue, as the tables split it."""
    v = item["Value"]
    if isinstance(v, dict):
        return (float(v["Value"]), None, v["Name"])
    if isinstance(v, str):
        return (None, v, None)
    return (float(v), None, None)


@pytest.fixture(scope="module")
def landed(simulator, names, tmp_path_factory) -> tuple[DeltaSink, object]:
    root = tmp_path_factory.mktemp("lake")
    sink = DeltaSink(root)
    result = PILakeflowConnector(config(simulator.url, root, list(names)), sink=sink).run(datasets=DATASETS)
    return sink, result


def test_the_run_succeeds_and_counts_its_rows(landed) -> None:
    sink, result = landed
    assert result.status == "success", result.errors
    for spec in SPECS:
        assert result.rows[spec.name] == sink.read(spec).num_rows > 0, spec.name


def test_interpolated_values_equal_what_pi_serves_on_the_aligned_grid(landed, simulator, names, http) -> None:
    sink, _ = landed
    stored = {(r["tag_webid"], r["timestamp"]): r for r in sink.read(INTERPOLATED).to_pylist()}
    expected = {}
    first, last = GRID
    for webid in names.values():
        params = {"startTime": format_datetime(first), "endTime": format_datetime(last), "interval": "30m"}
        for item in http.get(f"{simulator.url}/streams/{webid}/interpolated", params=params).json()["Items"]:
            expected[(webid, parse_iso(item["Timestamp"]))] = item
    assert len(expected) == len(names) * 11
    assert set(stored) == set(expected)
    for key, item in expected.items():
        row = stored[key]
        assert (row["value"], row["value_string"], row["digital_state_name"]) == served_value(item), key
        assert row["good"] == item["Good"]
        assert row["interval_seconds"] == 1800
        assert row["partition_date"] == key[1].date()


def test_summaries_equal_what_pi_computes_for_completed_intervals(landed, simulator, names, http) -> None:
    sink, _ = landed
    stored = {(r["tag_webid"], r["summary_type"], r["interval_start"]): r for r in sink.read(SUMMARY).to_pylist()}
    points = {p["WebId"]: p for p in (http.get(f"{simulator.url}/points/{w}").json() for w in names.values())}
    first, last = INTERVALS
    expected = {}
    for webid, point in points.items():
        kinds = TYPES if point["PointType"].startswith(("Float", "Int")) else ["Count"]
        params = {
            "startTime": format_datetime(first),
            "endTime": format_datetime(last),
            "summaryDuration": "1h",
            "summaryType": kinds,
        }
        items = http.get(f"{simulator.url}/streams/{webid}/summary", params=params).json()["Items"]
        for kind in kinds:
            for i, item in enumerate(it for it in items if it["Type"] == kind):
                expected[(webid, kind, first + i * timedelta(hours=1))] = item["Value"]
    assert {k[1] for k in expected} == set(TYPES)
    assert set(stored) == set(expected)
    for key, value in expected.items():
        row = stored[key]
        assert row["value"] == (None if value["Value"] is None else float(value["Value"])), key
        assert row["timestamp"] == parse_iso(value["Timestamp"])
        assert row["interval_end"] - row["interval_start"] == timedelta(hours=1)
        assert row["calculation_basis"] == "TimeWeighted"
        assert row["good"] == value["Good"]
    assert max(r["interval_end"] for r in stored.values()) == last  # the interval still running is not stored


def test_current_values_equal_the_snapshot_pi_serves(landed, simulator, names, http) -> None:
    sink, _ = landed
    stored = {r["tag_webid"]: r for r in sink.read(CURRENT_VALUE).to_pylist()}
    assert set(stored) == set(names.values())
    for webid, row in stored.items():
        item = http.get(f"{simulator.url}/streams/{webid}/value").json()
        assert (row["value"], row["value_string"], row["digital_state_name"]) == served_value(item)
        assert row["timestamp"] == parse_iso(item["Timestamp"])
        assert (row["good"], row["units"]) == (item["Good"], item["UnitsAbbreviation"] or None)


def test_every_point_attribute_lands_as_pi_serves_it(landed, simulator, names, http) -> None:
    sink, _ = landed
    stored = {(r["tag_webid"], r["attribute_name"]): r for r in sink.read(POINT_ATTRIBUTES).to_pylist()}
    expected = {}
    for webid in names.values():
        for item in http.get(f"{simulator.url}/points/{webid}/attributes").json()["Items"]:
            expected[(webid, item["Name"])] = item["Value"]
    assert set(stored) == set(expected)
    assert {"compdev", "excdev", "pointsource", "location4"} <= {k[1] for k in expected}  # not in pi_tags
    for key, value in expected.items():
        row = stored[key]
        if isinstance(value, str):
            assert (row["value"], row["value_number"]) == (value, None)
        else:
            assert float(row["value"]) == row["value_number"] == float(value)


def test_watermarks_cover_the_aligned_windows(landed, names) -> None:
    sink, _ = landed
    interpolated = marks(sink, "interpolated")
    assert set(interpolated) == set(names.values())
    assert set(interpolated.values()) == {(*GRID, "ok")}
    assert set(marks(sink, "summary").values()) == {(*INTERVALS, "ok")}


def test_a_rerun_full_or_incremental_changes_nothing(landed, simulator, names) -> None:
    sink, _ = landed
    before = {spec.name: content(sink, spec) for spec in SPECS}
    for mode in ("full", "incremental"):
        cfg = config(simulator.url, Path("unused: the sink is given"), list(names), mode=mode)
        again = PILakeflowConnector(cfg, sink=sink).run(datasets=DATASETS)
        assert again.status == "success", again.errors
        assert {spec.name: content(sink, spec) for spec in SPECS} == before, mode


class CrashOnWatermarks(DeltaSink):
    """Dies when the watermarks are written: the data MERGEs before it have committed."""

    def merge(self, spec: TableSpec, data: pa.Table, **hints) -> WriteResult:
        if spec.name == WATERMARKS.name:
            raise OSError("simulated crash between the data commit and the watermark commit")
        return super().merge(spec, data, **hints)


def test_a_run_killed_before_its_watermarks_is_repaired_by_the_next(simulator, names, tmp_path) -> None:
    tags = list(names)[:5]
    cfg = config(simulator.url, tmp_path / "lake", tags, mode="incremental")
    windowed = ["interpolated", "summary"]
    crashed = PILakeflowConnector(cfg, sink=CrashOnWatermarks(tmp_path / "lake")).run(datasets=windowed)
    assert crashed.status == "partial"
    assert all("simulated crash" in e for e in crashed.errors)
    sink = DeltaSink(tmp_path / "lake")
    for spec, dataset in ((INTERPOLATED, "interpolated"), (SUMMARY, "summary")):
        assert sink.read(spec).num_rows  # data landed...
        assert not marks(sink, dataset)  # ...its watermarks did not
    repaired = PILakeflowConnector(cfg, sink=sink).run(datasets=windowed)
    assert repaired.status == "success", repaired.errors
    clean = DeltaSink(tmp_path / "clean")
    PILakeflowConnector(config(simulator.url, tmp_path / "clean", tags), sink=clean).run(datasets=windowed)
    for spec in (INTERPOLATED, SUMMARY):
        assert content(sink, spec) == content(clean, spec)
    assert marks(sink, "summary") == marks(clean, "summary")


def test_the_next_hour_adds_the_completed_interval_and_updates_the_lookback(names, tmp_path) -> None:
    """A later run (the simulator's clock an hour on) re-reads its lookback and adds what completed since:
    the table then equals one run over the whole span, nothing twice."""
    tags = list(names)[:4]
    sim = SimConfig(seed=7, tags=500, now=FIXED_NOW, rate_limit_max_requests=0)
    later = FIXED_NOW + timedelta(hours=1)
    sink = DeltaSink(tmp_path / "lake")
    incremental = {"mode": "incremental", "end_date": None, "start_date": format_datetime(START)}
    for now in (FIXED_NOW, later):
        with running_simulator(dataclasses.replace(sim, now=now)) as running:
            cfg = config(running.url, tmp_path / "lake", tags, **incremental)
            result = PILakeflowConnector(cfg, sink=sink).run(datasets=["interpolated", "summary"])
            assert result.status == "success", result.errors
    with running_simulator(dataclasses.replace(sim, now=later)) as running:
        clean = DeltaSink(tmp_path / "clean")
        cfg = config(running.url, tmp_path / "clean", tags, mode="full", end_date=format_datetime(later))
        PILakeflowConnector(cfg, sink=clean).run(datasets=["interpolated", "summary"])
    for spec in (INTERPOLATED, SUMMARY):
        assert content(sink, spec) == content(clean, spec), spec.name
    assert max(r["interval_end"] for r in sink.read(SUMMARY).to_pylist()) == later


def test_the_datasets_are_off_unless_configured(simulator, names, tmp_path) -> None:
    sink = DeltaSink(tmp_path)
    tags = list(names)[:2]
    short = {"start_date": format_datetime(END - timedelta(minutes=5)), "max_count_per_tag": 10_000}
    PILakeflowConnector(config(simulator.url, tmp_path, tags, **short), sink=sink).run()
    assert all(sink.read(spec).num_rows == 0 for spec in SPECS)
    both = {"include_current_value": True, "include_point_attributes": True}
    result = PILakeflowConnector(config(simulator.url, tmp_path, tags, **short, **both), sink=sink).run()
    assert set(result.rows) >= {CURRENT_VALUE.name, POINT_ATTRIBUTES.name}
    assert INTERPOLATED.name not in result.rows


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({"interpolated": {"interval": "1.5s"}}, "extraction.interpolated.interval"),
        ({"summary": {"types": ["Median"]}}, "extraction.summary.types.0: must be one of"),
        ({"summary": {"types": []}}, "extraction.summary.types"),
        ({"summary": {"calculation_basis": "Weighted"}}, "extraction.summary.calculation_basis"),
    ],
)
def test_bad_settings_name_the_key(patch: dict, expected: str) -> None:
    data = {"pi_web_api": {"url": "https://pi.example.com/piwebapi"}, "extraction": {"name_filter": "*", **patch}}
    with pytest.raises(ConfigError, match=expected.replace(".", r"\.")):
        ConnectorConfig.from_dict(data)


def test_event_weighted_summaries_sit_beside_time_weighted_ones(simulator, names, tmp_path, http) -> None:
    """The basis is part of the key: switching it adds rows, each equal to what PI computes on that basis."""
    types = {n: http.get(f"{simulator.url}/points/{w}").json()["PointType"] for n, w in names.items()}
    numeric = [n for n, t in types.items() if t.startswith("Float")][:2]
    sink = DeltaSink(tmp_path)
    for basis in ("TimeWeighted", "EventWeighted"):
        summary = {"duration": "1h", "types": ["Average", "Count"], "calculation_basis": basis}
        cfg = config(simulator.url, tmp_path, numeric, summary=summary)
        assert PILakeflowConnector(cfg, sink=sink).run(datasets=["summary"]).status == "success"
    rows = sink.read(SUMMARY).to_pylist()
    assert {r["calculation_basis"] for r in rows} == {"TimeWeighted", "EventWeighted"}
    for webid in (names[n] for n in numeric):
        params = {
            "startTime": format_datetime(INTERVALS[0]),
            "endTime": format_datetime(INTERVALS[1]),
            "summaryDuration": "1h",
            "summaryType": "Average",
            "calculationBasis": "EventWeighted",
        }
        served = http.get(f"{simulator.url}/streams/{webid}/summary", params=params).json()["Items"]
        stored = sorted(
            (r["interval_start"], r["value"])
            for r in rows
            if (r["tag_webid"], r["summary_type"], r["calculation_basis"]) == (webid, "Average", "EventWeighted")
        )
        assert [v for _, v in stored] == [item["Value"]["Value"] for item in served]
