"""The exact Delta SQL the Spark sink runs on Databricks (pure functions; no Spark needed)."""

from __future__ import annotations

import dataclasses
import datetime as dt

from osipi_connector.lake import spark_sql
from osipi_connector.lake.schemas import RUN_METRICS, TAGS, TIMESERIES, WATERMARKS
from osipi_connector.lake.sink import Location

PROD = Location(catalog="main", schema="bronze", checkpoint_schema="checkpoints")


def test_create_schema_uses_the_layer_of_the_table():
    assert spark_sql.create_schema_sql(TIMESERIES, PROD) == "CREATE SCHEMA IF NOT EXISTS `main`.`bronze`"
    assert spark_sql.create_schema_sql(WATERMARKS, PROD) == "CREATE SCHEMA IF NOT EXISTS `main`.`checkpoints`"


def test_create_timeseries_table():
    assert spark_sql.create_table_sql(TIMESERIES, PROD) == (
        "CREATE TABLE IF NOT EXISTS `main`.`bronze`.`pi_timeseries` (\n"
        "  `tag_webid` STRING NOT NULL,\n"
        "  `tag_name` STRING,\n"
        "  `timestamp` TIMESTAMP NOT NULL,\n"
        "  `value_seq` INT NOT NULL,\n"
        "  `value` DOUBLE,\n"
        "  `value_string` STRING,\n"
        "  `digital_state_name` STRING,\n"
        "  `digital_state_code` INT,\n"
        "  `digital_state_is_system` BOOLEAN,\n"
        "  `good` BOOLEAN,\n"
        "  `questionable` BOOLEAN,\n"
        "  `substituted` BOOLEAN,\n"
        "  `annotated` BOOLEAN,\n"
        "  `units` STRING,\n"
        "  `partition_date` DATE NOT NULL,\n"
        "  `ingested_at` TIMESTAMP NOT NULL,\n"
        "  `run_id` STRING\n"
        ")\n"
        "USING DELTA\n"
        "PARTITIONED BY (`partition_date`)\n"
        "COMMENT 'PI recorded values, one row per value PI stored (duplicate timestamps kept, ordered by value_seq).'\n"
        "TBLPROPERTIES (\n"
        "  'delta.autoOptimize.optimizeWrite' = 'true',\n"
        "  'delta.autoOptimize.autoCompact' = 'true'\n"
        ")"
    )


def test_create_table_with_lists_column_comments_and_escaping():
    spec = dataclasses.replace(
        RUN_METRICS, comment="It's one row per run", column_comments={"errors": "what failed\\why"}
    )
    sql = spark_sql.create_table_sql(spec, Location(catalog="dev-cat", checkpoint_schema="ck"))
    assert sql.startswith("CREATE TABLE IF NOT EXISTS `dev-cat`.`ck`.`pi_run_metrics` (\n  `run_id` STRING NOT NULL,\n")
    assert (
        "  `errors` ARRAY<STRING> COMMENT 'what failed\\\\why'\n)\nUSING DELTA\nCOMMENT 'It\\'s one row per run'\n"
        in sql
    )
    assert "PARTITIONED BY" not in sql


def test_merge_timeseries_prunes_partitions_and_skips_unchanged_rows():
    sql = spark_sql.merge_sql(
        TIMESERIES, PROD, "osipi_src_1", {"partition_date": [dt.date(2025, 3, 2), dt.date(2025, 3, 1)]}
    )
    compared = [
        "tag_name",
        "value",
        "value_string",
        "digital_state_name",
        "digital_state_code",
        "digital_state_is_system",
        "good",
        "questionable",
        "substituted",
        "annotated",
        "units",
    ]
    changed = " OR ".join(f"(t.`{c}` IS DISTINCT FROM s.`{c}`)" for c in compared)
    assert sql == (
        "MERGE INTO `main`.`bronze`.`pi_timeseries` AS t\n"
        "USING `osipi_src_1` AS s\n"
        "ON t.`partition_date` IN (DATE '2025-03-01', DATE '2025-03-02') AND t.`partition_date` = s.`partition_date`"
        " AND t.`tag_webid` = s.`tag_webid` AND t.`timestamp` = s.`timestamp` AND t.`value_seq` = s.`value_seq`\n"
        f"WHEN MATCHED AND ({changed}) THEN UPDATE SET *\n"
        "WHEN NOT MATCHED THEN INSERT *"
    )


def test_merge_bounds_the_target_by_the_batch_key_ranges():
    ranges = {
        "tag_webid": ("W000", "W009"),
        "timestamp": (
            dt.datetime(2025, 3, 1, 0, 50, tzinfo=dt.timezone.utc),
            dt.datetime(2025, 3, 1, 2, 0, 0, 500, tzinfo=dt.timezone.utc),
        ),
        "value_seq": (0, 2),
    }
    sql = spark_sql.merge_sql(TIMESERIES, PROD, "v", {"partition_date": [dt.date(2025, 3, 1)]}, ranges)
    assert (
        "ON t.`partition_date` IN (DATE '2025-03-01') AND t.`tag_webid` >= 'W000' AND t.`tag_webid` <= 'W009'"
        " AND t.`timestamp` >= TIMESTAMP '2025-03-01 00:50:00.000000+00:00'"
        " AND t.`timestamp` <= TIMESTAMP '2025-03-01 02:00:00.000500+00:00'"
        " AND t.`value_seq` >= 0 AND t.`value_seq` <= 2 AND t.`partition_date` = s.`partition_date`"
    ) in sql


def test_merge_watermarks_on_dataset_and_item():
    sql = spark_sql.merge_sql(WATERMARKS, PROD, "v")
    assert sql.splitlines()[:3] == [
        "MERGE INTO `main`.`checkpoints`.`pi_watermarks` AS t",
        "USING `v` AS s",
        "ON t.`dataset` = s.`dataset` AND t.`item_id` = s.`item_id`",
    ]
    assert "(t.`high_watermark` IS DISTINCT FROM s.`high_watermark`)" in sql
    assert "(t.`updated_at` IS DISTINCT FROM s.`updated_at`)" in sql
    assert sql.splitlines()[-1] == "WHEN NOT MATCHED THEN INSERT *"


def test_insert_names_every_column():
    columns = ", ".join(f"`{c}`" for c in RUN_METRICS.schema.names)
    assert spark_sql.insert_sql(RUN_METRICS, PROD, "v") == (
        f"INSERT INTO `main`.`checkpoints`.`pi_run_metrics` ({columns})\nSELECT {columns} FROM `v`"
    )


def test_select_optimize_vacuum():
    assert (
        spark_sql.select_sql(WATERMARKS, PROD, ["item_id", "high_watermark"])
        == "SELECT `item_id`, `high_watermark` FROM `main`.`checkpoints`.`pi_watermarks`"
    )
    assert spark_sql.schema_probe_sql(TAGS, PROD) == "SELECT * FROM `main`.`bronze`.`pi_tags` LIMIT 0"
    assert (
        spark_sql.optimize_sql(TIMESERIES, PROD)
        == "OPTIMIZE `main`.`bronze`.`pi_timeseries` ZORDER BY (`tag_webid`, `timestamp`)"
    )
    assert spark_sql.optimize_sql(TAGS, PROD) == "OPTIMIZE `main`.`bronze`.`pi_tags`"
    assert spark_sql.vacuum_sql(TIMESERIES, PROD) == "VACUUM `main`.`bronze`.`pi_timeseries` RETAIN 168 HOURS"
    assert spark_sql.vacuum_sql(TAGS, PROD, 240) == "VACUUM `main`.`bronze`.`pi_tags` RETAIN 240 HOURS"
