"""The ZeroBus landing-table DDL run for real on local Spark + Delta, with a three-part name as users write it."""

from __future__ import annotations

import pyarrow as pa
from pyspark.sql import types as T

from iot_connector import ddl
from iot_connector.model import RECORD_FIELDS


def test_spark_parses_the_ddl_as_a_create_table(spark) -> None:
    plan = spark._jsparkSession.sessionState().sqlParser().parsePlan(ddl.landing_table_ddl("main.iot.edge_records"))
    assert plan.nodeName() == "CreateTable"


def test_created_table_has_the_record_columns(spark, spark_location) -> None:
    name = f"main.{spark_location.schema}.edge_records"
    spark.sql(ddl.landing_table_ddl(name))
    spark.sql(ddl.landing_table_ddl(name))  # IF NOT EXISTS: running the notebook twice is fine
    schema = spark.table(name).schema
    assert spark.sql(f"DESCRIBE DETAIL {name}").collect()[0].format == "delta"
    assert schema.fieldNames() == [f.name for f in RECORD_FIELDS]
    by_name = {f.name: f.dataType for f in schema.fields}
    assert by_name["edge_ts"] == T.TimestampType()
    assert by_name["value_long"] == T.LongType()
    assert by_name["attributes"] == T.MapType(T.StringType(), T.StringType())
    for field in RECORD_FIELDS:
        if field.type == pa.string():
            assert by_name[field.name] == T.StringType(), field.name
