"""The protobuf message sent to ZeroBus, generated from `model.RECORD_FIELDS` (never restated by hand).

Mirrors what `zerobus.tools.generate_proto` emits for the landing table: proto2, fields numbered 1..n in
column order, NOT NULL columns `required`, maps as nested `map_entry` messages (a real server cannot resolve
references to separate top-level messages, so nested types travel inside the one DescriptorProto).
"""

from __future__ import annotations

from dataclasses import fields as dc_fields
from functools import lru_cache
from typing import Any

import pyarrow as pa
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import Message

from iot_connector.model import RECORD_FIELDS, SCHEMA_VERSION, Record

MESSAGE_NAME = "IotRecord"
_F = descriptor_pb2.FieldDescriptorProto
_SCALARS: dict[pa.DataType, int] = {
    pa.string(): _F.TYPE_STRING,
    pa.int32(): _F.TYPE_INT32,
    pa.int64(): _F.TYPE_INT64,
    pa.float64(): _F.TYPE_DOUBLE,
    pa.float32(): _F.TYPE_FLOAT,
    pa.bool_(): _F.TYPE_BOOL,
    pa.binary(): _F.TYPE_BYTES,
}
_RECORD_ATTRS = frozenset(f.name for f in dc_fields(Record))


def _scalar(dtype: pa.DataType, where: str) -> int:
    try:
        return _SCALARS[dtype]
    except KeyError:
        raise TypeError(f"RECORD_FIELDS: no protobuf mapping for {where} of type {dtype}") from None


def _pascal(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def record_descriptor_proto() -> descriptor_pb2.DescriptorProto:
    """The DescriptorProto of one landing-table row, derived field by field from RECORD_FIELDS."""
    msg = descriptor_pb2.DescriptorProto(name=MESSAGE_NAME)
    for number, field in enumerate(RECORD_FIELDS, start=1):
        proto_field = msg.field.add(name=field.name, number=number)
        if pa.types.is_map(field.type):
            entry = msg.nested_type.add(name=f"{_pascal(field.name)}Entry")
            entry.options.map_entry = True
            entry.field.add(
                name="key", number=1, label=_F.LABEL_OPTIONAL, type=_scalar(field.type.key_type, field.name)
            )
            entry.field.add(
                name="value", number=2, label=_F.LABEL_OPTIONAL, type=_scalar(field.type.item_type, field.name)
            )
            proto_field.label = _F.LABEL_REPEATED
            proto_field.type = _F.TYPE_MESSAGE
            proto_field.type_name = f".{MESSAGE_NAME}.{entry.name}"
        else:
            proto_field.type = _scalar(field.type, field.name)
            proto_field.label = _F.LABEL_OPTIONAL if field.nullable else _F.LABEL_REQUIRED
    return msg


@lru_cache(maxsize=1)
def record_message_class() -> type[Message]:
    """A protobuf class built at runtime from the descriptor (one private pool, no generated _pb2 file)."""
    file_proto = descriptor_pb2.FileDescriptorProto(name="iot_record.proto", syntax="proto2")
    file_proto.message_type.add().CopyFrom(record_descriptor_proto())
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(MESSAGE_NAME))


def record_row(record: Record, agent_id: str) -> dict[str, Any]:
    """One landing-table row (RECORD_FIELDS names) for a Record: adds agent_id and schema_version."""
    row: dict[str, Any] = {}
    for name in _COLUMNS:
        if name == "agent_id":
            row[name] = agent_id
        elif name == "schema_version":
            row[name] = SCHEMA_VERSION
        else:
            row[name] = getattr(record, name)
    return row


def _columns() -> tuple[str, ...]:
    names = tuple(f.name for f in RECORD_FIELDS)
    missing = [n for n in names if n not in _RECORD_ATTRS and n not in ("agent_id", "schema_version")]
    if missing:
        raise TypeError(f"RECORD_FIELDS columns {missing} have no Record attribute: add them to Record")
    return names


_COLUMNS = _columns()
_SCALAR_COLUMNS = tuple(n for n in _COLUMNS if n not in ("agent_id", "schema_version", "attributes"))


def encode_record(record: Record, agent_id: str) -> bytes:
    """Serialized protobuf bytes of one Record; None values are left unset (proto2 optional).

    Setting attributes one by one on an empty message is about twice as fast as keyword construction (upb).
    """
    msg = record_message_class()(agent_id=agent_id, schema_version=SCHEMA_VERSION)
    for name in _SCALAR_COLUMNS:
        value = getattr(record, name)
        if value is not None:
            setattr(msg, name, value)
    if record.attributes:
        msg.attributes.update(record.attributes)
    return msg.SerializeToString()
