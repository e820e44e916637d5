"""Spark-side pieces of the PI connector (need pyspark: Databricks Runtime or the `[spark]` extra)."""
