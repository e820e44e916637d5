"""Record <-> bytes for the disk spool: the record's protobuf bytes, as ZeroBus will receive them.

Why protobuf (`model_proto.encode_core`): each accepted record is encoded once. The spool frame holds the
bytes the ZeroBus sink sends (it only appends the send-time columns), so the hot path no longer encodes a
spool format and then protobuf again (marshal ~2 µs + protobuf ~4 µs per record before). Frames start
with a format byte: `FORMAT_PROTO` now; frames written by earlier versions are still read: `FORMAT_MARSHAL`
(the Record's fields as one marshal'd tuple) and the orjson array before it (first byte `[`). marshal is
only ever fed the agent's own CRC-checked frames.
"""

from __future__ import annotations

import marshal
from collections.abc import Sequence
from dataclasses import fields
from operator import attrgetter

import orjson
from google.protobuf.message import DecodeError

from iot_connector.model import Record
from iot_connector.model_proto import decode_core, encode_core, encode_cores

_NAMES = tuple(f.name for f in fields(Record) if f.init)  # the field order of the marshal/orjson formats
_VALUES = attrgetter(*_NAMES)
FORMAT_MARSHAL = b"\x01"
FORMAT_PROTO = b"\x02"


def encode(record: Record) -> bytes:
    """Raises ValueError when a value does not fit its column (see `model_proto.encode_core`)."""
    return FORMAT_PROTO + (record.wire or encode_core(record))


def encode_many(records: Sequence[Record]) -> list[bytes]:
    """`encode` of each record, in one loop."""
    return list(map(FORMAT_PROTO.__add__, encode_cores(records)))


def decode(data: bytes) -> Record:
    kind = data[:1]
    if kind == FORMAT_PROTO:
        try:
            return decode_core(data[1:])
        except DecodeError as exc:
            raise ValueError(f"spool frame is not a Record: {exc}") from None
    if kind == FORMAT_MARSHAL:  # spool written before the protobuf format
        values = marshal.loads(data[1:])
        ok = isinstance(values, tuple)
    else:  # spool written before the marshal format
        values = orjson.loads(data)
        ok = isinstance(values, list)
    if not ok or len(values) > len(_NAMES):
        raise ValueError("spool frame is not a Record")
    return Record(*values)
