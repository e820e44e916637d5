"""SQL over real local Delta tables, with the names users type on Databricks."""

from __future__ import annotations

import pyarrow as pa
import pytest

from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import RUN_METRICS, TIMESERIES, WATERMARKS
from osipi_connector.lake.sink import Location
from osipi_connector.lake.sql import UnknownTableError, format_table, local_tables, rewrite_table_names, run_sql
from tests.lake import rows

LOCATION = Location(catalog="main", schema="bronze", checkpoint_schema="checkpoints")


@pytest.fixture
def root(tmp_path):
    sink = DeltaSink(tmp_path, LOCATION)
    sink.merge(TIMESERIES, rows.timeseries(tags=3, days=2, per_day=4))
    sink.merge(WATERMARKS, rows.table(WATERMARKS, [rows.watermark("W000", rows.T0), rows.watermark("W001", rows.T0)]))
    sink.append(RUN_METRICS, rows.run_metrics("r1"))
    return tmp_path


@pytest.mark.parametrize(
    "name", ["main.bronze.pi_timeseries", "bronze.pi_timeseries", "pi_timeseries", "`main`.`bronze`.`pi_timeseries`"]
)
def test_databricks_spellings_of_a_table_name_all_work(root, name):
    result = run_sql(
        root, LOCATION, f"SELECT tag_webid, COUNT(*) AS n FROM {name} GROUP BY tag_webid ORDER BY tag_webid"
    )
    assert result.to_pylist() == [{"tag_webid": f"W00{i}", "n": 8} for i in range(3)]


def test_join_across_schemas_with_aliases(root):
    result = run_sql(
        root,
        LOCATION,
        "SELECT w.item_id, COUNT(t.value) AS n FROM main.checkpoints.pi_watermarks w "
        "JOIN bronze.pi_timeseries t ON t.tag_webid = w.item_id GROUP BY w.item_id ORDER BY w.item_id",
    )
    assert result.to_pylist() == [{"item_id": "W000", "n": 8}, {"item_id": "W001", "n": 8}]


def test_run_metrics_list_column_through_sql(root):
    result = run_sql(root, LOCATION, "SELECT run_id, status, errors FROM main.checkpoints.pi_run_metrics")
    assert result.to_pylist() == [{"run_id": "r1", "status": "partial", "errors": ["W001: HTTP 502 after 3 retries"]}]


def test_string_literals_are_not_rewritten(root):
    query = "SELECT 'main.bronze.pi_timeseries' AS s, tag_webid FROM pi_timeseries WHERE tag_webid = 'W000' LIMIT 1"
    assert run_sql(root, LOCATION, query).to_pylist() == [{"s": "main.bronze.pi_timeseries", "tag_webid": "W000"}]


def test_unknown_table_error_lists_existing_tables(root):
    with pytest.raises(
        UnknownTableError,
        match=r"^no table main\.bronze\.pi_nope\. Tables: main\.bronze\.pi_timeseries, main\.checkpoints\.pi_run_metrics, main\.checkpoints\.pi_watermarks",
    ):
        run_sql(root, LOCATION, "SELECT * FROM main.bronze.pi_nope")


def test_empty_root_says_there_are_no_tables(tmp_path):
    with pytest.raises(UnknownTableError, match=r"^no table pi_timeseries\. Tables: none \(no Delta tables under"):
        run_sql(tmp_path, LOCATION, "SELECT * FROM pi_timeseries")


def test_plain_name_shared_by_two_schemas_needs_qualification(root):
    DeltaSink(root, Location(catalog="main", schema="silver")).ensure(TIMESERIES)
    assert sorted(local_tables(root)) == [
        "main.bronze.pi_timeseries",
        "main.checkpoints.pi_run_metrics",
        "main.checkpoints.pi_watermarks",
        "main.silver.pi_timeseries",
    ]
    assert run_sql(root, LOCATION, "SELECT COUNT(*) AS n FROM silver.pi_timeseries").to_pylist() == [{"n": 0}]
    with pytest.raises(
        UnknownTableError,
        match=r"^no table pi_timeseries \(several schemas have it: qualify it as schema\.table\)\. Tables: main",
    ):
        run_sql(root, LOCATION, "SELECT COUNT(*) FROM pi_timeseries")
    with pytest.raises(UnknownTableError, match=r"^no table bronze\.nope\. Tables: main"):
        run_sql(root, LOCATION, "SELECT COUNT(*) FROM bronze.nope")


def test_rewrite_leaves_column_references_alone():
    tables = ["main.bronze.pi_timeseries"]
    assert (
        rewrite_table_names("SELECT t.value FROM bronze.pi_timeseries t WHERE t.good", tables, LOCATION)
        == 'SELECT t.value FROM "main.bronze.pi_timeseries" t WHERE t.good'
    )


def test_format_table_is_a_readable_grid():
    table = pa.table({"tag": ["W000", None], "value": [1.5, 22.25]})
    assert format_table(table) == "\n".join(
        [
            "+------+-------+",
            "| tag  | value |",
            "+------+-------+",
            "| W000 | 1.5   |",
            "| NULL | 22.25 |",
            "+------+-------+",
            "(2 rows)",
        ]
    )
    assert format_table(table, max_rows=1).endswith("(2 rows, first 1 shown)")
    assert format_table(pa.table({"s": ["x" * 100]}), max_width=5).splitlines()[3] == "| xxxx… |"
