"""The bronze exploration notebook's queries, run on local Spark + Delta over real bronze and checkpoint tables
written by SparkSink under three-part names (`main.<schema>.<table>`), quoted the way the notebook quotes them.

`COST_TABLE_SIZE_SQL` (DESCRIBE DETAIL) runs here too; the other `COST_*` queries read Databricks system tables.
"""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pyarrow as pa
import pytest

from osipi_connector.lake.schemas import (
    ALL_TABLES,
    ASSET_HIERARCHY,
    ELEMENT_ATTRIBUTES,
    EVENT_FRAMES,
    RUN_METRICS,
    TAGS,
    TIMESERIES,
    WATERMARKS,
    TableSpec,
)
from osipi_connector.lake.spark_sink import SparkSink
from tests.sparksession import drop_location, fresh_location

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "explore_bronze.py"
NOW = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
HOUR = dt.timedelta(hours=1)


def notebook_queries() -> dict[str, str]:
    queries = {}
    for node in ast.parse(NOTEBOOK.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name.endswith("_SQL") and not name.startswith("COST_"):
                queries[name] = ast.literal_eval(node.value)
    return queries


def arrow(spec: TableSpec, rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist([{n: r.get(n) for n in spec.schema.names} for r in rows], schema=spec.schema)


def value(tag: str, at: dt.datetime, v: float, seq: int = 0, good: bool = True, **extra) -> dict:
    return {
        "tag_webid": f"W-{tag}",
        "tag_name": tag,
        "timestamp": at,
        "value_seq": seq,
        "value": v,
        "good": good,
        "questionable": False,
        "substituted": False,
        "digital_state_is_system": False,
        "partition_date": at.date(),
        "ingested_at": NOW,
        **extra,
    }


# Tag A: four values, one bad, a 2-hour gap, two values at its last timestamp (value_seq 0 and 1).
# Tag B: two values, 30 minutes apart, all good.
TIMESERIES_ROWS = [
    value("A", NOW - 5 * HOUR, 1.0),
    value("A", NOW - 3 * HOUR, 2.0, good=False),
    value("A", NOW - 2 * HOUR, 3.0, seq=0),
    value("A", NOW - 2 * HOUR, 4.0, seq=1),
    value("B", NOW - HOUR, 10.0),
    value("B", NOW - HOUR / 2, 11.0),
]
ROWS: dict[str, list[dict]] = {
    TIMESERIES.name: TIMESERIES_ROWS,
    TAGS.name: [{"tag_webid": f"W-{t}", "tag_name": t, "ingested_at": NOW} for t in "AB"],
    ASSET_HIERARCHY.name: [
        {
            "element_id": f"E{i}",
            "element_webid": f"EW{i}",
            "element_name": f"E{i}",
            "element_path": f"\\\\E{i}",
            "depth": depth,
            "template_name": tpl,
            "has_children": depth == 1,
            "af_database_webid": "DB",
            "ingested_at": NOW,
        }
        for i, (depth, tpl) in enumerate([(1, "Site"), (2, "Unit"), (2, "Unit"), (2, "Pump")])
    ],
    ELEMENT_ATTRIBUTES.name: [
        {
            "attribute_id": "A1",
            "attribute_webid": "AW1",
            "element_id": "E1",
            "element_webid": "EW1",
            "attribute_name": "Temperature",
            "point_webid": "W-A",
            "ingested_at": NOW,
        }
    ],
    EVENT_FRAMES.name: [
        {
            "event_frame_id": f"F{i}",
            "event_frame_webid": f"FW{i}",
            "event_name": f"Batch {i}",
            "start_time": NOW - (i + 1) * HOUR,
            "end_time": None if i == 0 else NOW - HOUR,
            "is_in_progress": i == 0,
            "af_database_webid": "DB",
            "ingested_at": NOW,
        }
        for i in range(2)
    ],
    WATERMARKS.name: [
        {
            "dataset": "timeseries",
            "item_id": "W-A",
            "high_watermark": NOW - 2 * HOUR,
            "last_status": "ok",
            "updated_at": NOW,
        },
        {
            "dataset": "timeseries",
            "item_id": "W-B",
            "high_watermark": NOW - HOUR,
            "last_status": "failed",
            "updated_at": NOW,
        },
    ],
    RUN_METRICS.name: [
        {"run_id": f"R{i}", "mode": "incremental", "started_at": NOW - i * HOUR, "status": "success"} for i in range(3)
    ],
}


def quoted(*parts: str) -> str:
    return ".".join(f"`{p}`" for p in parts)


@pytest.fixture(scope="module")
def bronze(spark, tmp_path_factory) -> dict[str, object]:
    """Every bronze and checkpoint table as a Delta table in fresh schemas of the catalog `main`."""
    location = fresh_location(spark, tmp_path_factory.mktemp("lake"))
    sink = SparkSink(spark, location)
    for spec in ALL_TABLES:  # as a run writes them: MERGE by the spec's keys, run metrics appended
        if spec.name not in ROWS:  # a table the notebook does not query (pi_summary, pi_interpolated, ...)
            continue
        write = sink.append if spec is RUN_METRICS else sink.merge
        write(spec, arrow(spec, ROWS[spec.name]))
    yield {
        "bronze": quoted(location.catalog, location.schema),
        "checkpoints": quoted(location.catalog, location.checkpoint_schema),
        "days": 7,
        "gap_minutes": 60,
    }
    drop_location(spark, location)


def run(spark, bronze: dict, name: str) -> list[dict]:
    return [row.asDict() for row in spark.sql(notebook_queries()[name].format(**bronze)).collect()]


def notebook_constant(name: str) -> str:
    for node in ast.parse(NOTEBOOK.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == name:
            return ast.literal_eval(node.value)
    raise LookupError(name)


def test_table_sizes_come_from_the_delta_log(spark, bronze) -> None:
    for layer, spec in [("bronze", TIMESERIES), ("checkpoints", WATERMARKS)]:
        table = f"{bronze[layer]}.{spec.name}"
        (detail,) = spark.sql(notebook_constant("COST_TABLE_SIZE_SQL").format(table=table)).collect()
        assert detail.numFiles >= 1
        assert detail.sizeInBytes > 0
        assert detail.name.endswith(f".{spec.name}")


def test_the_notebook_has_the_queries_this_file_checks() -> None:
    assert set(notebook_queries()) == {
        "ROW_COUNTS_SQL",
        "LATEST_VALUE_SQL",
        "GAPS_SQL",
        "QUALITY_SQL",
        "EVENT_FRAMES_IN_PROGRESS_SQL",
        "HIERARCHY_DEPTH_SQL",
        "WATERMARKS_SQL",
        "RECENT_RUNS_SQL",
    }


def test_row_counts(spark, bronze) -> None:
    counts = {r["table_name"]: r["row_count"] for r in run(spark, bronze, "ROW_COUNTS_SQL")}
    assert counts == {name: len(rows) for name, rows in ROWS.items()}


def test_latest_value_per_tag_takes_the_last_value_seq(spark, bronze) -> None:
    latest = {
        r["tag_name"]: (r["timestamp"].replace(tzinfo=dt.timezone.utc), r["value"])
        for r in run(spark, bronze, "LATEST_VALUE_SQL")
    }
    assert latest == {"A": (NOW - 2 * HOUR, 4.0), "B": (NOW - HOUR / 2, 11.0)}


def test_gaps_longer_than_the_threshold(spark, bronze) -> None:
    gaps = [(r["tag_name"], r["gap_minutes"]) for r in run(spark, bronze, "GAPS_SQL")]
    assert gaps == [("A", 120.0)]


def test_quality_share(spark, bronze) -> None:
    share = {r["tag_name"]: (r["row_count"], float(r["good_share"])) for r in run(spark, bronze, "QUALITY_SQL")}
    assert share == {"A": (4, 0.75), "B": (2, 1.0)}


def test_event_frames_in_progress(spark, bronze) -> None:
    rows = run(spark, bronze, "EVENT_FRAMES_IN_PROGRESS_SQL")
    assert [r["event_name"] for r in rows] == ["Batch 0"]
    opened = 1.0 + (dt.datetime.now(dt.timezone.utc) - NOW) / HOUR  # the module's data was made at import
    assert float(rows[0]["open_hours"]) == pytest.approx(opened, abs=0.1)


def test_hierarchy_depth(spark, bronze) -> None:
    rows = [(r["depth"], r["elements"], r["templates"], r["leaves"]) for r in run(spark, bronze, "HIERARCHY_DEPTH_SQL")]
    assert rows == [(1, 1, 1, 0), (2, 3, 2, 3)]


def test_watermarks_and_recent_runs(spark, bronze) -> None:
    (marks,) = run(spark, bronze, "WATERMARKS_SQL")
    assert (marks["dataset"], marks["items"], marks["failed_items"]) == ("timeseries", 2, 1)
    assert [r["run_id"] for r in run(spark, bronze, "RECENT_RUNS_SQL")] == ["R0", "R1", "R2"]
