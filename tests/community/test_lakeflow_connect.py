"""`PILakeflowConnect` driven the way the Lakeflow Community Connectors framework's own source test suite drives
a connector (tests/unit/sources/test_suite.py there: list_tables, invalid names, schema and metadata stability,
records that parse with the schema, non-nullable and key columns set, reads that terminate, every column
populated), plus what that suite leaves to each source: offsets that only move forward, no row twice across
offsets, and values equal to what the simulator serves. Against the session simulator over HTTP."""

from __future__ import annotations

import itertools
import json
from datetime import date, datetime, timedelta

import pytest
import requests
from pyspark.sql.types import (
    ArrayType,
    BooleanType,
    DateType,
    DoubleType,
    IntegerType,
    LongType,
    StringType,
    StructType,
    TimestampType,
)

from osipi_connector.community.lakeflow_connect import INGESTION_TYPES, LakeflowConnect
from osipi_connector.community.pi_source import PILakeflowConnect
from osipi_connector.config import ConfigError
from osipi_connector.piwebapi.pitime import format_datetime
from tests.conftest import FIXED_NOW
from tests.extract.conftest import VALUE_COLUMNS, served_rows

pytestmark = pytest.mark.integration
START = FIXED_NOW - timedelta(hours=5)
MAX_ITERATIONS = 50  # the framework's read_termination_max_iterations
# Columns empty in every row of this 5-hour sample, each for a reason of the data (the framework's
# allow_null_columns): PI computed every summary (no error); no frame of these hours was acknowledged; the
# operators' annotations carry their note as the value, without a description.
ALLOW_NULL = {
    "pi_summary": {"error"},
    "pi_event_frames": {"acknowledged_by", "acknowledged_date"},
    "pi_eventframe_annotations": {"description"},
}


@pytest.fixture(scope="module")
def options(simulator) -> dict[str, str]:
    server = requests.get(f"{simulator.url}/dataservers").json()["Items"][0]
    points = requests.get(f"{simulator.url}/dataservers/{server['WebId']}/points", params={"maxCount": 500}).json()
    chosen: dict[str, list[str]] = {}
    for p in points["Items"]:
        chosen.setdefault(p["PointType"], [])
        if len(chosen[p["PointType"]]) < 2:
            chosen[p["PointType"]].append(p["Name"])
    return {
        "pi_web_api_url": simulator.url,
        "pi_auth_type": "anonymous",
        "tag_names": ",".join(name for names in chosen.values() for name in names),
        "af_database": "\\\\PISIM-AF\\Plant",
        "start_date": format_datetime(START),
        "window": "1h",
        "max_count_per_tag": "300",  # recorded values are paged by time inside a window
        "interpolated_interval": "20m",
        "summary_duration": "1h",
        "summary_types": "Average,Minimum,Maximum,Count",
        "sourceName": "osipi",  # keys the framework adds are not ours: ignored
    }


@pytest.fixture(scope="module")
def connector(options) -> PILakeflowConnect:
    return PILakeflowConnect(options)


def read_all(connector, table: str) -> tuple[list[dict], list[dict | None]]:
    """Every record of a full read from an empty offset, and the offsets in order."""
    offset: dict | None = {}
    records, offsets = [], []
    for _ in range(MAX_ITERATIONS):
        batch, following = connector.read_table(table, offset, {})
        records.extend(batch)
        offsets.append(following)
        if following is None or following == offset:
            return records, offsets
        offset = following
    raise AssertionError(f"{table}: no end after {MAX_ITERATIONS} reads")


@pytest.fixture(scope="module")
def full_reads(connector) -> dict[str, tuple[list[dict], list]]:
    return {table: read_all(connector, table) for table in connector.list_tables()}


def parses(value, dtype) -> bool:
    """Whether the framework's conversion (JSON value -> Spark type) accepts `value`."""
    if value is None:
        return True
    if isinstance(dtype, StringType):
        return isinstance(value, str)
    if isinstance(dtype, IntegerType | LongType):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(dtype, DoubleType):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if isinstance(dtype, BooleanType):
        return isinstance(value, bool)
    if isinstance(dtype, TimestampType):
        return isinstance(value, str) and datetime.fromisoformat(value).tzinfo is not None
    if isinstance(dtype, DateType):
        return isinstance(value, str) and isinstance(date.fromisoformat(value), date)
    if isinstance(dtype, ArrayType):
        return isinstance(value, list) and all(parses(v, dtype.elementType) for v in value)
    raise AssertionError(f"no check for {dtype}")


def test_it_is_a_lakeflow_connect_source(connector) -> None:
    assert isinstance(connector, LakeflowConnect)
    with pytest.raises(NotImplementedError):
        connector.read_table_deletes("pi_timeseries", {}, {})


def test_list_tables(connector, options) -> None:
    tables = connector.list_tables()
    assert tables
    assert len(set(tables)) == len(tables)
    assert all(isinstance(t, str) for t in tables)
    assert {"pi_timeseries", "pi_interpolated", "pi_summary", "pi_event_frames", "pi_asset_hierarchy"} <= set(tables)
    without_af = PILakeflowConnect({k: v for k, v in options.items() if k != "af_database"})
    assert "pi_event_frames" not in without_af.list_tables()
    with pytest.raises(ValueError, match="af_database"):
        without_af.get_table_schema("pi_event_frames", {})


@pytest.mark.parametrize("method", ["get_table_schema", "read_table_metadata", "read_table"])
def test_an_invalid_table_name_raises(connector, method) -> None:
    args = ({}, {}) if method == "read_table" else ({},)
    with pytest.raises(ValueError, match="unknown table"):
        getattr(connector, method)("__nonexistent_table_$$_9z9z9z__", *args)


def test_schemas_are_struct_types_with_unique_fields_and_stable(connector) -> None:
    for table in connector.list_tables():
        schema = connector.get_table_schema(table, {})
        assert isinstance(schema, StructType)
        names = schema.fieldNames()
        assert names
        assert len(set(names)) == len(names)
        assert connector.get_table_schema(table, {}) == schema
        assert PILakeflowConnect(connector.options).get_table_schema(table, {}) == schema  # not from data


def test_metadata_is_valid_and_stable(connector) -> None:
    for table in connector.list_tables():
        meta = connector.read_table_metadata(table, {})
        assert meta == connector.read_table_metadata(table, {})
        assert meta["ingestion_type"] in INGESTION_TYPES
        names = connector.get_table_schema(table, {}).fieldNames()
        assert meta["primary_keys"]
        assert set(meta["primary_keys"]) <= set(names), table
        if meta["ingestion_type"] == "cdc":
            assert meta["cursor_field"] in names, table


def test_records_parse_with_the_schema_and_keys_are_set(connector, full_reads) -> None:
    for table, (records, _) in full_reads.items():
        assert records, f"{table}: the first read is empty"
        schema = connector.get_table_schema(table, {})
        keys = connector.read_table_metadata(table, {})["primary_keys"]
        for record in records:
            assert set(record) == set(schema.fieldNames()), table
            for field in schema.fields:
                assert parses(record[field.name], field.dataType), (table, field.name, record[field.name])
                assert field.nullable or record[field.name] is not None, (table, field.name)
            assert all(record[k] is not None for k in keys), table


def test_every_column_is_populated_by_some_record(connector, full_reads) -> None:
    for table, (records, _) in full_reads.items():
        names = connector.get_table_schema(table, {}).fieldNames()
        empty = {n for n in names if all(r[n] is None for r in records)} - ALLOW_NULL.get(table, set())
        assert not empty, f"{table}: columns null in every record: {sorted(empty)}"


def test_reads_terminate_and_offsets_only_move_forward(connector, full_reads) -> None:
    for table, (_, offsets) in full_reads.items():
        json.dumps(offsets)
        if connector.read_table_metadata(table, {})["ingestion_type"] == "snapshot":
            assert offsets == [None], table
            continue
        cursors = [datetime.fromisoformat(o["cursor"]) for o in offsets]
        assert cursors[-1] == cursors[-2], f"{table}: the last read returns its own offset"
        assert all(a < b for a, b in itertools.pairwise(cursors[:-1])), table
        assert len(offsets) > 3, f"{table}: several windows"
        assert cursors[-1] <= FIXED_NOW  # never past the PI server's clock
        again, following = connector.read_table(table, offsets[-1], {})
        assert (list(again), following) == ([], offsets[-1])  # resuming at the end reads nothing


def test_no_row_twice_across_offsets(connector, full_reads) -> None:
    for table, (records, _) in full_reads.items():
        keys = connector.read_table_metadata(table, {})["primary_keys"]
        seen = [tuple(r[k] for k in keys) for r in records]
        assert len(seen) == len(set(seen)), table


def test_recorded_values_equal_what_the_simulator_serves(connector, full_reads, simulator) -> None:
    records, offsets = full_reads["pi_timeseries"]
    end = datetime.fromisoformat(offsets[-1]["cursor"])
    webids = [t.webid for t in connector.tags()]
    served = served_rows(simulator.url, webids, format_datetime(START), format_datetime(end))
    # the window is [START, end): the values stamped exactly `end` are the next read's
    served = {row for row in served if row[1] < end}
    got = [tuple(datetime.fromisoformat(r[c]) if c == "timestamp" else r[c] for c in VALUE_COLUMNS) for r in records]
    assert len(got) == len(served)
    assert set(got) == served


def test_interpolated_and_summary_windows_tile_the_grid(full_reads) -> None:
    stamps = sorted({r["timestamp"] for r in full_reads["pi_interpolated"][0]})
    assert [datetime.fromisoformat(s) for s in stamps] == [START + i * timedelta(minutes=20) for i in range(15)]
    intervals = sorted({(r["interval_start"], r["interval_end"]) for r in full_reads["pi_summary"][0]})
    assert [datetime.fromisoformat(a) for a, _ in intervals] == [START + i * timedelta(hours=1) for i in range(5)]


def test_bad_options_name_the_option(options) -> None:
    with pytest.raises(ConfigError, match="window"):
        PILakeflowConnect({**options, "window": "soon"})
    with pytest.raises(ConfigError, match=r"summary\.types"):
        PILakeflowConnect({**options, "summary_types": "Median"})


def test_the_af_catalogue_reads_the_rows_the_connectors_own_runs_write(connector, full_reads, options, tmp_path):
    """Templates, categories, analyses, AF tables and rows, annotations since start_date and units of measure:
    the same rows as a run of the connector writes (tests/extract/test_af_catalog.py compares those with the
    simulator's endpoints), each key once."""
    from osipi_connector import PILakeflowConnector
    from osipi_connector.lake.delta_sink import DeltaSink
    from osipi_connector.lake.schemas import AF_CATALOG_TABLES

    assert {spec.name for spec in AF_CATALOG_TABLES} <= set(connector.list_tables())
    sink = DeltaSink(tmp_path)
    cfg = {
        "pi_web_api": {"url": options["pi_web_api_url"], "auth_type": "anonymous"},
        "extraction": {"af_database": options["af_database"], "tag_names": ["SINUSOID"], "mode": "full",
                       "start_date": options["start_date"], "end_date": format_datetime(connector.cap)},
        "local": {"lakehouse_root": str(tmp_path)},
    }  # fmt: skip
    datasets = ["templates", "categories", "analyses", "af_tables", "annotations", "units_of_measure"]
    result = PILakeflowConnector(cfg, sink=sink).run(datasets=datasets)
    assert result.status == "success", result.errors
    for spec in AF_CATALOG_TABLES:
        records, _ = full_reads[spec.name]
        keys = [tuple(r[k] for k in spec.keys) for r in records]
        assert len(set(keys)) == len(keys) > 0, spec.name
        written = sink.read(spec).drop_columns(["ingested_at", "run_id"]).to_pylist()
        read = [{k: v for k, v in r.items() if k not in ("ingested_at", "run_id")} for r in records]
        as_text = lambda rows: sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)  # noqa: E731
        assert as_text(read) == as_text(_iso(written)), spec.name


def _iso(rows: list[dict]) -> list[dict]:
    return [{k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in r.items()} for r in rows]
