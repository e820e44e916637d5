"""The ZeroBus landing-table DDL through Spark's own SQL parser and, as a parquet table, its resulting schema."""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import types as T

from iot_connector import ddl
from iot_connector.model import RECORD_FIELDS


def test_spark_parses_the_ddl_as_a_create_table(spark) -> None:
    plan = spark._jsparkSession.sessionState().sqlParser().parsePlan(ddl.landing_table_ddl("main.iot.edge_records"))
    assert plan.nodeName() == "CreateTable"


def test_created_table_has_the_record_columns(spark, tmp_path) -> None:
    """Delta is not available to local Spark; the same column list USING parquet shows what Spark makes of it."""
    statement = ddl.landing_table_ddl("spark_catalog.default.edge_records_ddl_test")
    statement = statement.replace("USING DELTA", f"USING parquet LOCATION '{tmp_path}'")
    spark.sql(statement)
    try:
        schema = spark.table("spark_catalog.default.edge_records_ddl_test").schema
    finally:
        spark.sql("DROP TABLE spark_catalog.default.edge_records_ddl_test")
    assert schema.fieldNames() == [f.name for f in RECORD_FIELDS]
    by_name = {f.name: f.dataType for f in schema.fields}
    assert by_name["edge_ts"] == T.TimestampType()
    assert by_name["value_long"] == T.LongType()
    assert by_name["attributes"] == T.MapType(T.StringType(), T.StringType())
    for field in RECORD_FIELDS:
        if field.type == pa.string():
            assert by_name[field.name] == T.StringType(), field.name
