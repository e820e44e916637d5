# Databricks notebook source
# MAGIC %md
# MAGIC # PI connector: explore the bronze tables
# MAGIC
# MAGIC Verify what the connector wrote and what it costs. Every query reads the tables of
# MAGIC `osipi_connector/lake/schemas.py`: `pi_timeseries`, `pi_tags`, `pi_asset_hierarchy`,
# MAGIC `pi_element_attributes`, `pi_event_frames` in the bronze schema, `pi_watermarks` and `pi_run_metrics`
# MAGIC in the checkpoint schema. The SQL lives in `*_SQL` constants so a test can run it on local Spark.

# COMMAND ----------

import functools

dbutils.widgets.text("catalog", "main", "Catalog")
dbutils.widgets.text("schema", "bronze", "Bronze schema")
dbutils.widgets.text("checkpoint_schema", "checkpoints", "Checkpoint schema")
dbutils.widgets.text("days", "7", "Look back (days)")
dbutils.widgets.text("gap_minutes", "60", "Report gaps longer than (minutes)")


def quoted(*parts: str) -> str:
    return ".".join("`" + p.replace("`", "``") + "`" for p in parts)


catalog = dbutils.widgets.get("catalog")
T = {
    "bronze": quoted(catalog, dbutils.widgets.get("schema")),
    "checkpoints": quoted(catalog, dbutils.widgets.get("checkpoint_schema")),
    "days": int(dbutils.widgets.get("days")),
    "gap_minutes": int(dbutils.widgets.get("gap_minutes")),
}


def show(sql: str) -> None:
    display(spark.sql(sql.format(**T)))


# COMMAND ----------

# MAGIC %md
# MAGIC ## Row counts

# COMMAND ----------

ROW_COUNTS_SQL = """
SELECT 'pi_timeseries' AS table_name, count(*) AS row_count FROM {bronze}.pi_timeseries
UNION ALL SELECT 'pi_tags', count(*) FROM {bronze}.pi_tags
UNION ALL SELECT 'pi_asset_hierarchy', count(*) FROM {bronze}.pi_asset_hierarchy
UNION ALL SELECT 'pi_element_attributes', count(*) FROM {bronze}.pi_element_attributes
UNION ALL SELECT 'pi_event_frames', count(*) FROM {bronze}.pi_event_frames
UNION ALL SELECT 'pi_watermarks', count(*) FROM {checkpoints}.pi_watermarks
UNION ALL SELECT 'pi_run_metrics', count(*) FROM {checkpoints}.pi_run_metrics
"""
show(ROW_COUNTS_SQL)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Latest value per tag
# MAGIC Duplicate timestamps are kept in order by `value_seq`: the last one PI returned wins.

# COMMAND ----------

LATEST_VALUE_SQL = """
SELECT tag_name, tag_webid, timestamp, value, value_string, digital_state_name, good, units
FROM (
  SELECT *, row_number() OVER (PARTITION BY tag_webid ORDER BY timestamp DESC, value_seq DESC) AS rn
  FROM {bronze}.pi_timeseries
) WHERE rn = 1
ORDER BY tag_name, tag_webid
"""
show(LATEST_VALUE_SQL)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Gaps
# MAGIC Consecutive values of one tag further apart than `gap_minutes`, over the last `days`. Exception-reported
# MAGIC tags are quiet when nothing changes, so compare with the tag's usual rhythm before calling it an outage.

# COMMAND ----------

GAPS_SQL = """
SELECT tag_name, tag_webid, previous_timestamp AS gap_start, timestamp AS gap_end,
       round((unix_micros(timestamp) - unix_micros(previous_timestamp)) / 60e6, 1) AS gap_minutes
FROM (
  SELECT tag_name, tag_webid, timestamp,
         lag(timestamp) OVER (PARTITION BY tag_webid ORDER BY timestamp, value_seq) AS previous_timestamp
  FROM {bronze}.pi_timeseries
  WHERE timestamp >= current_timestamp() - make_interval(0, 0, 0, {days})
)
WHERE unix_micros(timestamp) - unix_micros(previous_timestamp) > {gap_minutes} * 60e6
ORDER BY gap_minutes DESC, tag_name
LIMIT 200
"""
show(GAPS_SQL)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Quality share per tag
# MAGIC `good` is PI's quality flag; system digital states (I/O Timeout, Shutdown...) are not process data.

# COMMAND ----------

QUALITY_SQL = """
SELECT tag_name, tag_webid, count(*) AS row_count,
       round(avg(CASE WHEN good THEN 1.0 ELSE 0.0 END), 4) AS good_share,
       round(avg(CASE WHEN questionable THEN 1.0 ELSE 0.0 END), 4) AS questionable_share,
       round(avg(CASE WHEN substituted THEN 1.0 ELSE 0.0 END), 4) AS substituted_share,
       round(avg(CASE WHEN digital_state_is_system THEN 1.0 ELSE 0.0 END), 4) AS system_state_share
FROM {bronze}.pi_timeseries
WHERE timestamp >= current_timestamp() - make_interval(0, 0, 0, {days})
GROUP BY tag_name, tag_webid
ORDER BY good_share, tag_name
"""
show(QUALITY_SQL)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Event frames in progress
# MAGIC Open frames have no `end_time`; the connector updates them in place when they close.

# COMMAND ----------

EVENT_FRAMES_IN_PROGRESS_SQL = """
SELECT event_name, template_name, severity, start_time,
       round((unix_micros(current_timestamp()) - unix_micros(start_time)) / 3600e6, 2) AS open_hours,
       primary_element_webid, is_acknowledged
FROM {bronze}.pi_event_frames
WHERE is_in_progress
ORDER BY start_time
"""
show(EVENT_FRAMES_IN_PROGRESS_SQL)

# COMMAND ----------

# MAGIC %md
# MAGIC ## AF hierarchy depth

# COMMAND ----------

HIERARCHY_DEPTH_SQL = """
SELECT depth, count(*) AS elements, count(DISTINCT template_name) AS templates,
       sum(CASE WHEN has_children THEN 0 ELSE 1 END) AS leaves
FROM {bronze}.pi_asset_hierarchy
GROUP BY depth
ORDER BY depth
"""
show(HIERARCHY_DEPTH_SQL)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Freshness: watermarks and recent runs

# COMMAND ----------

WATERMARKS_SQL = """
SELECT dataset, count(*) AS items, min(high_watermark) AS oldest_high_watermark,
       max(high_watermark) AS newest_high_watermark,
       sum(CASE WHEN last_status = 'failed' THEN 1 ELSE 0 END) AS failed_items
FROM {checkpoints}.pi_watermarks
GROUP BY dataset
ORDER BY dataset
"""
show(WATERMARKS_SQL)

RECENT_RUNS_SQL = """
SELECT run_id, mode, engine, status, started_at, duration_seconds, tags_requested, tags_failed,
       rows_timeseries, rows_event_frames, requests, errors
FROM {checkpoints}.pi_run_metrics
ORDER BY started_at DESC
LIMIT 48
"""
show(RECENT_RUNS_SQL)

# COMMAND ----------

# MAGIC %md
# MAGIC ## Cost (Databricks only)
# MAGIC Storage per table from the Delta log, and the jobs' DBUs and list-price cost from the system tables
# MAGIC (needs `SELECT` on `system.billing` and `system.lakeflow`).

# COMMAND ----------

TABLES = [
    ("bronze", "pi_timeseries"),
    ("bronze", "pi_tags"),
    ("bronze", "pi_asset_hierarchy"),
    ("bronze", "pi_element_attributes"),
    ("bronze", "pi_event_frames"),
    ("checkpoints", "pi_watermarks"),
    ("checkpoints", "pi_run_metrics"),
]
COST_TABLE_SIZE_SQL = "DESCRIBE DETAIL {table}"
details = [
    spark.sql(COST_TABLE_SIZE_SQL.format(table=f"{T[layer]}.{name}")).select("name", "numFiles", "sizeInBytes")
    for layer, name in TABLES
]
display(functools.reduce(lambda a, b: a.unionByName(b), details))

# COMMAND ----------

COST_JOBS_SQL = """
WITH connector_jobs AS (
  SELECT DISTINCT job_id FROM system.lakeflow.jobs WHERE name LIKE '%osipi-connector%'
)
SELECT u.usage_date, u.sku_name, sum(u.usage_quantity) AS dbus,
       round(sum(u.usage_quantity * p.pricing.default), 2) AS list_cost
FROM system.billing.usage u
JOIN connector_jobs j ON u.usage_metadata.job_id = j.job_id
LEFT JOIN system.billing.list_prices p
  ON u.sku_name = p.sku_name AND u.cloud = p.cloud
 AND u.usage_start_time >= p.price_start_time
 AND (p.price_end_time IS NULL OR u.usage_start_time < p.price_end_time)
WHERE u.usage_date >= current_date() - {days}
GROUP BY u.usage_date, u.sku_name
ORDER BY u.usage_date, u.sku_name
"""
show(COST_JOBS_SQL)
