# Databricks notebook source
# MAGIC %md
# MAGIC # PI connector: ad-hoc run
# MAGIC
# MAGIC Runs the same extraction as the scheduled job (`PILakeflowConnector(config).run()`) for the tags and
# MAGIC window chosen in the widgets, then shows what landed. Use it to try a new tag list, re-read a window,
# MAGIC or check credentials before deploying a schedule.
# MAGIC
# MAGIC * Credentials come from the secret scope (`dbutils.secrets.get`), never from a widget.
# MAGIC * Writes go to `<catalog>.<schema>` (bronze) and `<catalog>.<checkpoint schema>` (watermarks, run metrics);
# MAGIC   a `backfill` run never moves the scheduled job's high watermarks.

# COMMAND ----------

# MAGIC %md
# MAGIC Installs the connector from the bundle's synced source (`setup.py` one folder up). Skip this cell on a
# MAGIC cluster that already has the `osipi_connector` wheel attached as a library.

# COMMAND ----------

# MAGIC %pip install --quiet ..

# COMMAND ----------

dbutils.library.restartPython()

# COMMAND ----------

TEXT_WIDGETS = {
    "pi_web_api_url": ("https://pi.example.com/piwebapi", "PI Web API URL"),
    "secrets_scope": ("pi-connector", "Secret scope"),
    "tag_names": ("SINUSOID,CDT158", "Tag names (comma separated)"),
    "name_filter": ("", "or a name filter (FIC*)"),
    "start": ("*-1d", "Window start (ISO-8601 or PI time)"),
    "end": ("*", "Window end (* = now)"),
    "catalog": ("main", "Catalog"),
    "schema": ("bronze", "Bronze schema"),
    "checkpoint_schema": ("checkpoints", "Checkpoint schema"),
}
for name, (default, label) in TEXT_WIDGETS.items():
    dbutils.widgets.text(name, default, label)
dbutils.widgets.dropdown("auth_type", "basic", ["basic", "kerberos", "oauth", "anonymous"], "Authentication")
dbutils.widgets.dropdown("mode", "backfill", ["backfill", "incremental", "full"], "Mode")
# auto: timeseries on the executors with a classic session; false where executors cannot reach PI (standard
# access mode); serverless (Spark Connect) always uses the driver.
dbutils.widgets.dropdown("distributed", "auto", ["auto", "false", "true"], "Fetch on executors")

# COMMAND ----------

w = {name: dbutils.widgets.get(name).strip() for name in [*TEXT_WIDGETS, "auth_type", "mode", "distributed"]}
config = {
    "pi_web_api_url": w["pi_web_api_url"],
    "pi_auth_type": w["auth_type"],
    "secrets_scope": w["secrets_scope"],
    "catalog": w["catalog"],
    "schema": w["schema"],
    "checkpoint_schema": w["checkpoint_schema"],
    "tag_names": [t.strip() for t in w["tag_names"].split(",") if t.strip()],
    "mode": w["mode"],
    "start_date": w["start"],
    "end_date": None if w["end"] in ("", "*") else w["end"],
    "distributed": {"auto": "auto", "false": False, "true": True}[w["distributed"]],
}
if w["name_filter"]:
    config["name_filter"] = w["name_filter"]
if w["auth_type"] == "basic":
    # Read here so a missing key fails now, with the key's name, before any request is sent.
    config["pi_username"] = dbutils.secrets.get(w["secrets_scope"], "pi_username")
    config["pi_password"] = dbutils.secrets.get(w["secrets_scope"], "pi_password")

# COMMAND ----------

from osipi_connector import PILakeflowConnector

result = PILakeflowConnector(config).run()
print(result)

# COMMAND ----------

# MAGIC %md
# MAGIC ## What landed

# COMMAND ----------

checkpoints = f"`{w['catalog']}`.`{w['checkpoint_schema']}`"
bronze = f"`{w['catalog']}`.`{w['schema']}`"
display(spark.sql(f"SELECT * FROM {checkpoints}.pi_run_metrics ORDER BY started_at DESC LIMIT 5"))

# COMMAND ----------

display(
    spark.sql(
        f"""
        SELECT tag_name, count(*) AS values, min(timestamp) AS first, max(timestamp) AS last,
               round(avg(CASE WHEN good THEN 1.0 ELSE 0.0 END), 3) AS good_share
        FROM {bronze}.pi_timeseries
        WHERE ingested_at >= current_timestamp() - INTERVAL 1 HOUR
        GROUP BY tag_name ORDER BY tag_name
        """
    )
)
