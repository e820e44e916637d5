"""Sparkplug B `Payload` protobuf (subset of eclipse/tahu sparkplug_b.proto), built as a descriptor in code.

Generated-code stand-in, kept in this one file: it avoids a protoc build step and a checked-in *_pb2.py.
Fields we do not decode (metadata, properties, dataset, template, extension) are left out; protobuf keeps
them as unknown fields, so payloads that carry them still parse. Field numbers follow tahu exactly.
"""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "iot_connector.sparkplug_b"


def _field(msg: descriptor_pb2.DescriptorProto, name: str, number: int, ftype: int, **extra: str | int) -> None:
    msg.field.add(name=name, number=number, type=ftype, label=extra.pop("label", _F.LABEL_OPTIONAL), **extra)


# Metric fields (tahu numbers); the *_value ones form the `value` oneof.
_METRIC_FIELDS = (
    ("name", 1, _F.TYPE_STRING),
    ("alias", 2, _F.TYPE_UINT64),
    ("timestamp", 3, _F.TYPE_UINT64),
    ("datatype", 4, _F.TYPE_UINT32),
    ("is_historical", 5, _F.TYPE_BOOL),
    ("is_transient", 6, _F.TYPE_BOOL),
    ("is_null", 7, _F.TYPE_BOOL),
    ("int_value", 10, _F.TYPE_UINT32),
    ("long_value", 11, _F.TYPE_UINT64),
    ("float_value", 12, _F.TYPE_FLOAT),
    ("double_value", 13, _F.TYPE_DOUBLE),
    ("boolean_value", 14, _F.TYPE_BOOL),
    ("string_value", 15, _F.TYPE_STRING),
    ("bytes_value", 16, _F.TYPE_BYTES),
)


def _build() -> descriptor_pb2.FileDescriptorProto:
    file = descriptor_pb2.FileDescriptorProto(name="iot_connector/sparkplug_b.proto", package=_PACKAGE, syntax="proto2")
    payload = file.message_type.add(name="Payload")
    _field(payload, "timestamp", 1, _F.TYPE_UINT64)
    _field(payload, "metrics", 2, _F.TYPE_MESSAGE, type_name=f".{_PACKAGE}.Payload.Metric", label=_F.LABEL_REPEATED)
    _field(payload, "seq", 3, _F.TYPE_UINT64)
    _field(payload, "uuid", 4, _F.TYPE_STRING)
    _field(payload, "body", 5, _F.TYPE_BYTES)
    metric = payload.nested_type.add(name="Metric")
    metric.oneof_decl.add(name="value")
    for name, number, ftype in _METRIC_FIELDS:
        _field(metric, name, number, ftype, **({"oneof_index": 0} if name.endswith("_value") else {}))
    return file


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_build())
Payload = message_factory.GetMessageClass(_pool.FindMessageTypeByName(f"{_PACKAGE}.Payload"))

# Sparkplug B datatype numbers (tahu DataType enum) to names, for records' data_type.
DATATYPES: dict[int, str] = {
    1: "Int8",
    2: "Int16",
    3: "Int32",
    4: "Int64",
    5: "UInt8",
    6: "UInt16",
    7: "UInt32",
    8: "UInt64",
    9: "Float",
    10: "Double",
    11: "Boolean",
    12: "String",
    13: "DateTime",
    14: "Text",
    15: "UUID",
    16: "DataSet",
    17: "Bytes",
    18: "File",
    19: "Template",
}
