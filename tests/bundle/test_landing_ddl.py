"""The ZeroBus landing table's DDL, generated from RECORD_FIELDS."""

from __future__ import annotations

import re

import pyarrow as pa
import pytest

from iot_connector import ddl
from iot_connector.model import RECORD_FIELDS

DDL = ddl.landing_table_ddl("main.iot_bronze.edge_records")
COLUMN = re.compile(r"^  `(?P<name>[^`]+)` (?P<type>.+?)(?P<not_null> NOT NULL)?,?$", re.MULTILINE)


def test_columns_follow_record_fields_in_order_with_their_nullability() -> None:
    columns = [(m["name"], bool(m["not_null"])) for m in COLUMN.finditer(DDL)]
    assert columns == [(f.name, not f.nullable) for f in RECORD_FIELDS]


def test_zerobus_rejects_clustering_and_generated_columns_so_there_are_none() -> None:
    upper = DDL.upper()
    for forbidden in ("CLUSTER BY", "GENERATED", "PARTITIONED BY", "DEFAULT", "IDENTITY"):
        assert forbidden not in upper
    assert DDL.startswith("CREATE TABLE IF NOT EXISTS `main`.`iot_bronze`.`edge_records` (")
    assert "USING DELTA" in DDL


def test_types() -> None:
    types = {m["name"]: m["type"] for m in COLUMN.finditer(DDL)}
    assert types["edge_ts"] == "TIMESTAMP"  # int64 µs in the record; ZeroBus fills TIMESTAMP from int64 µs
    assert types["seq"] == "BIGINT"
    assert types["value_double"] == "DOUBLE"
    assert types["schema_version"] == "INT"
    assert types["is_replayed"] == "BOOLEAN"
    assert types["attributes"] == "MAP<STRING, STRING>"
    assert ddl.sql_type(pa.list_(pa.string())) == "ARRAY<STRING>"
    assert ddl.sql_type(pa.timestamp("us", tz="UTC")) == "TIMESTAMP"


@pytest.mark.parametrize("dtype", [pa.decimal128(10, 2), pa.map_(pa.string(), pa.list_(pa.int32())), pa.struct([])])
def test_types_zerobus_cannot_carry_are_refused(dtype: pa.DataType) -> None:
    with pytest.raises(TypeError, match="no ZeroBus-compatible SQL type"):
        ddl.sql_type(dtype)


@pytest.mark.parametrize("name", ["edge_records", "iot.edge_records", "a..b", "a.b.c.d"])
def test_table_must_be_a_three_part_name(name: str) -> None:
    with pytest.raises(ValueError, match=r"catalog\.schema\.table|empty identifier"):
        ddl.landing_table_ddl(name)


def test_identifiers_are_quoted() -> None:
    assert ddl.table_identifier("main.we`ird.t") == "`main`.`we``ird`.`t`"


def test_column_order_and_types_match_the_protobuf_descriptor() -> None:
    """ZeroBus maps a column to the protobuf field with the same position: the DDL and the message must agree."""
    from google.protobuf import descriptor_pb2

    from iot_connector import model_proto

    f = descriptor_pb2.FieldDescriptorProto
    proto_types = {
        "STRING": f.TYPE_STRING,
        "INT": f.TYPE_INT32,
        "BIGINT": f.TYPE_INT64,
        "TIMESTAMP": f.TYPE_INT64,
        "DOUBLE": f.TYPE_DOUBLE,
        "BOOLEAN": f.TYPE_BOOL,
        "MAP<STRING, STRING>": f.TYPE_MESSAGE,
    }
    message = model_proto.record_descriptor_proto()
    columns = [(m["name"], m["type"], bool(m["not_null"])) for m in COLUMN.finditer(DDL)]
    assert [field.name for field in message.field] == [c[0] for c in columns]
    for field, (name, sql, not_null) in zip(message.field, columns):
        assert field.type == proto_types[sql], name
        assert (field.label == f.LABEL_REQUIRED) == not_null, name
