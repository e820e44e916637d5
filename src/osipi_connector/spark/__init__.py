"""Spark-side pieces of the PI connector (need pyspark: Databricks Runtime or the `[spark]` extra), except
`dispatch`, the runner's pyspark-free switch to distributed extraction."""
