"""Real local PySpark: DataFrames built from the extractor's Arrow batches have exactly the bronze schemas.

These cover what runs before and after the Delta statements (tests/lake/test_spark_sink.py runs those).
`native` runs each conversion both ways: Arrow-native (Spark 4) and the pandas / unix_micros path that
Spark 3.5 (DBR 16.4 LTS) takes.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager

import pyarrow as pa
import pytest
from chispa import assert_df_equality
from chispa.schema_comparer import assert_schema_equality
from pyspark.sql import functions as F
from pyspark.sql import types as T

from osipi_connector.lake.merge_conditions import sql_literal
from osipi_connector.lake.schemas import ALL_TABLES, EVENT_FRAMES, TIMESERIES
from osipi_connector.lake.spark_arrow import arrow_native, to_arrow
from osipi_connector.lake.spark_schema import spark_schema
from osipi_connector.lake.spark_sink import SparkSink
from osipi_connector.lake.validate import SchemaMismatchError, conform
from tests.lake import rows

EXPECTED_TIMESERIES = T.StructType(
    [
        T.StructField("tag_webid", T.StringType(), False),
        T.StructField("tag_name", T.StringType(), True),
        T.StructField("timestamp", T.TimestampType(), False),
        T.StructField("value_seq", T.IntegerType(), False),
        T.StructField("value", T.DoubleType(), True),
        T.StructField("value_string", T.StringType(), True),
        T.StructField("digital_state_name", T.StringType(), True),
        T.StructField("digital_state_code", T.IntegerType(), True),
        T.StructField("digital_state_is_system", T.BooleanType(), True),
        T.StructField("good", T.BooleanType(), True),
        T.StructField("questionable", T.BooleanType(), True),
        T.StructField("substituted", T.BooleanType(), True),
        T.StructField("annotated", T.BooleanType(), True),
        T.StructField("units", T.StringType(), True),
        T.StructField("partition_date", T.DateType(), False),
        T.StructField("ingested_at", T.TimestampType(), False),
        T.StructField("run_id", T.StringType(), True),
    ]
)


@contextmanager
def session_time_zone(spark, zone: str):
    previous = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", zone)
    try:
        yield
    finally:
        spark.conf.set("spark.sql.session.timeZone", previous)


def frame(spark) -> pa.Table:
    return rows.table(
        EVENT_FRAMES,
        [
            {
                "event_frame_id": "ef-1",
                "event_frame_webid": "F1",
                "event_name": "Trip \u00e9t\u00e9 \u2603",
                "start_time": dt.datetime(2025, 3, 1, 0, 0, 0, 123456, tzinfo=rows.UTC),
                "end_time": None,
                "is_in_progress": True,
                "referenced_element_webids": ["E1", "E2"],
                "categories": [],
                "can_be_acknowledged": False,
                "attributes": '{"Phase": "B"}',
                "af_database_webid": "D1",
                "ingested_at": rows.T0,
            },
            {
                "event_frame_id": "ef-2",
                "event_frame_webid": "F2",
                "event_name": "Alarm",
                "start_time": rows.T0,
                "end_time": rows.T0 + dt.timedelta(microseconds=1),
                "is_in_progress": False,
                "referenced_element_webids": None,
                "categories": [None, "x"],
                "can_be_acknowledged": True,
                "af_database_webid": "D1",
                "ingested_at": rows.T0,
            },
        ],
    )


def test_spark_schema_of_timeseries_is_the_bronze_schema():
    assert_schema_equality(spark_schema(TIMESERIES.schema), EXPECTED_TIMESERIES)


@pytest.fixture(params=[True, False], ids=["arrow-native", "spark35-path"])
def native(request) -> bool:
    return request.param


def test_dataframe_from_arrow_has_the_spec_schema_and_values(spark, native):
    sink = SparkSink(spark, arrow_native=native)
    batch = rows.timeseries(tags=2, days=1, per_day=3)
    df = sink.dataframe(TIMESERIES, batch)

    assert_schema_equality(df.schema, EXPECTED_TIMESERIES)
    expected = spark.createDataFrame(batch.to_pylist(), schema=EXPECTED_TIMESERIES)
    assert_df_equality(df, expected, ignore_row_order=True)


def test_every_table_builds_a_dataframe_with_its_schema(spark):
    sink = SparkSink(spark)
    for spec in ALL_TABLES:
        assert sink.dataframe(spec, spec.schema.empty_table()).schema == spark_schema(spec.schema), spec.name


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata", "America/Los_Angeles"])
def test_timestamps_survive_as_utc_microseconds_whatever_the_session_zone(spark, zone):
    batch = frame(spark)
    with session_time_zone(spark, zone):
        df = SparkSink(spark).dataframe(EVENT_FRAMES, batch)
        micros = df.select(
            "event_frame_id", F.unix_micros("start_time").alias("us"), F.unix_micros("end_time").alias("end_us")
        )
        back = conform(EVENT_FRAMES, df.toArrow())

    assert sorted(micros.collect()) == [
        ("ef-1", 1740787200123456, None),
        ("ef-2", 1740787200000000, 1740787200000001),
    ]
    assert back.sort_by("event_frame_id").equals(batch.sort_by("event_frame_id"))


def test_lists_strings_and_bools_round_trip_through_spark(spark, native):
    batch = frame(spark)
    df = SparkSink(spark, arrow_native=native).dataframe(EVENT_FRAMES, batch)
    back = conform(EVENT_FRAMES, to_arrow(df, EVENT_FRAMES.schema, native)).sort_by("event_frame_id")
    assert back.select(
        ["event_name", "referenced_element_webids", "categories", "can_be_acknowledged"]
    ).to_pylist() == [
        {
            "event_name": "Trip \u00e9t\u00e9 \u2603",
            "referenced_element_webids": ["E1", "E2"],
            "categories": [],
            "can_be_acknowledged": False,
        },
        {
            "event_name": "Alarm",
            "referenced_element_webids": None,
            "categories": [None, "x"],
            "can_be_acknowledged": True,
        },
    ]
    assert back.schema.equals(EVENT_FRAMES.schema)


def test_timeseries_round_trip_with_nulls_in_every_nullable_column(spark, native):
    batch = rows.timeseries(tags=2, days=2, per_day=2)  # digital_state_code (INT), value_string... all null
    df = SparkSink(spark, arrow_native=native).dataframe(TIMESERIES, batch)
    assert_schema_equality(df.schema, EXPECTED_TIMESERIES)
    assert conform(TIMESERIES, to_arrow(df, TIMESERIES.schema, native)).equals(batch)


def test_local_spark_is_detected_as_arrow_native(spark):
    assert arrow_native(spark) is True  # pyspark 4.x here; DBR 16.4 (Spark 3.5) takes the other path


def test_bad_batch_is_refused_before_spark_sees_it(spark):
    batch = rows.timeseries(tags=1, days=1, per_day=2).drop_columns(["good"])
    with pytest.raises(SchemaMismatchError, match=r"pi_timeseries.*missing \['good'\]"):
        SparkSink(spark).dataframe(TIMESERIES, batch)


@pytest.mark.parametrize("zone", ["UTC", "America/New_York", "Asia/Kolkata"])
def test_the_merge_timestamp_literal_is_the_same_instant_in_any_session_time_zone(spark, zone):
    """The key-range bounds in the MERGE ON clause are UTC instants whatever the cluster's time zone."""
    moment = dt.datetime(2025, 3, 1, 23, 59, 59, 999500, tzinfo=rows.UTC)
    with session_time_zone(spark, zone):
        micros = spark.sql(f"SELECT unix_micros({sql_literal(moment)}) AS m").collect()[0]["m"]
    assert micros == (moment - dt.datetime(1970, 1, 1, tzinfo=rows.UTC)) // dt.timedelta(microseconds=1)
