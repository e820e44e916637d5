"""Spark-side pieces of the PI connector (need pyspark: Databricks Runtime or the `[spark]` extra), except
`dispatch`, the Spark sink's pyspark-free choice of unit executor (executor.py), and `py4j_logging`."""
