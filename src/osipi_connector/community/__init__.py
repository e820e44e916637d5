"""The connector as a source of the Databricks Labs Lakeflow Community Connectors framework.

Needs pyspark (the framework's schemas are Spark StructTypes); the rest of the package never imports this.
"""
