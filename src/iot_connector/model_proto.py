"""The protobuf message sent to ZeroBus, generated from `model.RECORD_FIELDS` (never restated by hand).

Mirrors what `zerobus.tools.generate_proto` emits for the landing table: proto2, fields numbered 1..n in
column order, NOT NULL columns `required`, maps as nested `map_entry` messages (a real server cannot resolve
references to separate top-level messages, so nested types travel inside the one DescriptorProto).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields as dc_fields
from functools import lru_cache
from operator import attrgetter
from typing import Any

import pyarrow as pa
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message

from iot_connector.model import RECORD_FIELDS, SCHEMA_VERSION, Record
from iot_connector.model_wire import encode_many

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
    for name in COLUMNS:
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


COLUMNS = _columns()
# Set by the sink at send time, after the record was spooled: encoded apart, in `send_suffix`.
_SEND_COLUMNS = ("agent_id", "schema_version", "ingest_ts", "is_replayed")
_CORE_COLUMNS = tuple(n for n in COLUMNS if n not in _SEND_COLUMNS and n != "attributes")
_core_values = attrgetter(*_CORE_COLUMNS)  # one C call for all of a record's scalar columns
_REQUIRED = tuple(f.name for f in RECORD_FIELDS if not f.nullable)


def encode_core(record: Record) -> bytes:
    """Protobuf bytes of the record's own columns: everything but agent_id, schema_version, ingest_ts and
    is_replayed, which the sink appends with `send_suffix`. The spool stores these bytes and ZeroBus sends
    them as they are (protobuf merges concatenated messages), so a record is encoded once. Written by
    `model_wire` (hand-made wire format, checked against upb by the tests): 2x cheaper than upb from Python.
    Kept on the record (`Record.wire`).

    Raises ValueError naming the record when a value does not fit its column (e.g. an int beyond 64 bits).
    """
    return encode_cores([record])[0]


def encode_cores(records: Sequence[Record]) -> list[bytes]:
    """`encode_core` of each record, in one loop (the spool's hot path)."""
    try:
        return encode_many(records)
    except (TypeError, ValueError, AttributeError, OverflowError) as exc:
        bad = next((r for r in records if r.wire is None), records[0])
        raise ValueError(
            f"record of tag {bad.tag_id!r} from source {bad.source_id!r} cannot be encoded: {exc}"
        ) from None


@lru_cache(maxsize=1024)
def send_suffix(agent_id: str, ingest_ts: int | None, is_replayed: bool) -> bytes:
    """The columns set at send time, as protobuf bytes to append to `encode_core`'s (one per batch, cached)."""
    msg = record_message_class()(agent_id=agent_id, schema_version=SCHEMA_VERSION, is_replayed=is_replayed)
    if ingest_ts is not None:
        msg.ingest_ts = ingest_ts
    return msg.SerializePartialToString()


def encode_record(record: Record, agent_id: str) -> bytes:
    """Serialized protobuf bytes of one Record as sent to ZeroBus; None values are left unset (proto2)."""
    return (record.wire or encode_core(record)) + send_suffix(agent_id, record.ingest_ts, record.is_replayed)


def encode_records(records: Sequence[Record], agent_id: str) -> list[bytes]:
    """`encode_record` of each record; spooled records only get their send-time columns appended."""
    out = []
    suffixes: dict[tuple[int | None, bool], bytes] = {}  # a batch has one ingest_ts: one or two suffixes
    for r in records:
        key = (r.ingest_ts, r.is_replayed)
        suffix = suffixes.get(key)
        if suffix is None:
            suffix = suffixes[key] = send_suffix(agent_id, *key)
        out.append((r.wire or encode_core(r)) + suffix)
    return out


def decode_core(data: bytes) -> Record:
    """The Record whose `encode_core` bytes are `data` (a spool frame); keeps `data` as its `wire`.

    Raises google.protobuf.message.DecodeError for bytes that are not such a message."""
    msg = record_message_class().FromString(data)
    has = msg.HasField  # HasField + getattr per column: 2x faster than ListFields (descriptor objects)
    # Any: the message class is built at runtime (untyped); its fields are the Record columns of the same names
    values: dict[str, Any] = {name: getattr(msg, name) if has(name) else None for name in _CORE_COLUMNS}
    missing = [name for name in _REQUIRED if values[name] is None]  # upb's parse does not check them
    if missing:
        raise DecodeError(f"{MESSAGE_NAME} lacks the required columns {missing}")
    values["attributes"] = dict(msg.attributes)
    record = Record(**values)
    record.wire = data
    return record
