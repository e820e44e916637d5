"""The protobuf wire bytes of a Record's own columns, written by hand: the one encoding on the hot path.

Why by hand: upb (protobuf's C core) is fast to serialize but each attribute set from Python costs ~0.2 µs,
about 3.5 µs per record. Most of a record is the same for every reading of a tag (source, endpoint, tag,
names, quality, attributes), so those columns are encoded once per distinct tag and cached as bytes; only
the reading's own values (id, values, timestamps, seq) are encoded per record: ~1.5 µs. The output is plain
proto2 wire format for `model_proto`'s descriptor (field numbers = RECORD_FIELDS order); the tests check it
parses to the same message as upb's encoding, for every column kind.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from functools import lru_cache
from operator import attrgetter
from typing import Any

import numpy as np
import pyarrow as pa

from iot_connector.model import RECORD_FIELDS, Record

# Same for every reading of one tag (cached as bytes per distinct combination) / different per reading.
TAG_COLUMNS = ("source_id", "protocol", "endpoint", "tag_id", "tag_path", "data_type", "quality", "unit")
READING_COLUMNS = (
    "record_id", "value_double", "value_long", "value_string", "value_bool", "value_raw", "status_code",
    "source_ts", "server_ts", "edge_ts", "seq",
)  # fmt: skip
_NUMBER = {f.name: n for n, f in enumerate(RECORD_FIELDS, start=1)}
_TYPE = {f.name: f.type for f in RECORD_FIELDS}
_CACHE_LIMIT = 20_000  # distinct tags (x qualities x attribute sets) kept, ~10 MB; cleared when passed


def _slow_uvarint(v: int) -> bytes:
    out = bytearray()
    while v > 0x7F:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


_SMALL = [_slow_uvarint(v) for v in range(1 << 14)]  # 1- and 2-byte varints
_LOW = [bytes(((v & 0x7F) | 0x80, (v >> 7) | 0x80)) for v in range(1 << 14)]  # low 14 bits, more to follow
_HIGH: dict[int, bytes] = {}  # varint of v >> 14: timestamps share it for 16 ms


def _uvarint(v: int) -> bytes:
    if v < 0x4000:
        return _SMALL[v]
    high = _HIGH.get(v >> 14)
    if high is None:
        if len(_HIGH) > 4096:
            _HIGH.clear()
        high = _HIGH[v >> 14] = _uvarint(v >> 14)
    return _LOW[v & 0x3FFF] + high


def _int_encoder(bits: int) -> Callable[[Any], bytes]:
    low, high = -(1 << (bits - 1)), 1 << (bits - 1)

    def encode(v: Any) -> bytes:
        if type(v) is not int and not isinstance(v, int):  # bools are ints, as upb accepts them
            raise TypeError(f"{v!r} is not an integer")
        if not low <= v < high:
            raise ValueError(f"{v} is out of range for int{bits}")
        return _uvarint(v if v >= 0 else v + (1 << 64))  # negatives: 10-byte two's complement

    return encode


def _str_encoder(v: Any) -> bytes:
    data = v.encode() if type(v) is str else _text(v)
    return _uvarint(len(data)) + data


def _text(v: Any) -> bytes:
    if not isinstance(v, str):
        raise TypeError(f"{v!r} is not a string")
    return v.encode()


def _bool_encoder(v: Any) -> bytes:
    if not isinstance(v, int):
        raise TypeError(f"{v!r} is not a bool")
    return b"\x01" if v else b"\x00"


def _float_encoder(fmt: str) -> Callable[[Any], bytes]:
    pack = struct.Struct(fmt).pack

    def encode(v: Any) -> bytes:
        try:
            return pack(v)
        except struct.error as exc:
            raise TypeError(f"{v!r} is not a number: {exc}") from None

    return encode


_ENCODERS: dict[pa.DataType, tuple[int, Callable[[Any], bytes]]] = {  # (wire type, value encoder)
    pa.string(): (2, _str_encoder),
    pa.int64(): (0, _int_encoder(64)),
    pa.int32(): (0, _int_encoder(32)),
    pa.bool_(): (0, _bool_encoder),
    pa.float64(): (1, _float_encoder("<d")),
    pa.float32(): (5, _float_encoder("<f")),
}


def _field(name: str) -> tuple[bytes, Callable[[Any], bytes]]:
    """(key bytes, value encoder) of a scalar column."""
    wire_type, encoder = _ENCODERS[_TYPE[name]]
    return _uvarint(_NUMBER[name] << 3 | wire_type), encoder


_TAG_FIELDS = [_field(n) for n in TAG_COLUMNS]
_ATTRIBUTES_KEY = _uvarint(_NUMBER["attributes"] << 3 | 2)
_tag_values = attrgetter(*TAG_COLUMNS)
_reading_values = attrgetter(*READING_COLUMNS)
_tag_cache: dict[tuple, bytes] = {}
_REQUIRED = frozenset(f.name for f in RECORD_FIELDS if not f.nullable)
# The reading's columns are written out one by one below (a loop over them costs 25 % more): their keys.
_K_ID, _K_DOUBLE, _K_LONG, _K_STRING, _K_BOOL, _K_RAW, _K_STATUS, _K_SOURCE_TS, _K_SERVER_TS, _K_EDGE_TS, _K_SEQ = (
    _field(n)[0] for n in READING_COLUMNS
)
_int64 = _int_encoder(64)
_double = _float_encoder("<d")


def _tag_bytes(values: tuple, attributes: tuple[tuple[str, str], ...]) -> bytes:
    missing = [name for name, v in zip(TAG_COLUMNS, values) if v is None and name in _REQUIRED]
    if missing:
        raise ValueError(f"{missing} are required")
    parts = [key + encode(v) for (key, encode), v in zip(_TAG_FIELDS, values) if v is not None]
    for k, v in attributes:  # map entries: message {1: key, 2: value}
        entry = b"\x0a" + _str_encoder(k) + b"\x12" + _str_encoder(v)
        parts.append(_ATTRIBUTES_KEY + _uvarint(len(entry)) + entry)
    return b"".join(parts)


def tag_wire(record: Record) -> bytes:
    """The bytes of the record's tag columns and attributes (cached per distinct combination): the part of
    its encoding a source that builds `Record.wire` itself (see sources/mqtt/fastjson.py) reuses."""
    attributes = record.attributes
    key = (_tag_values(record), tuple(attributes.items()) if attributes else ())
    tag = _tag_cache.get(key)
    if tag is None:
        if len(_tag_cache) >= _CACHE_LIMIT:
            _tag_cache.clear()
        tag = _tag_cache[key] = _tag_bytes(*key)
    return tag


# For such sources: the keys of the reading columns, and the varint encoders, as encode_many uses them.
READING_KEYS = dict(zip(READING_COLUMNS, (_field(n)[0] for n in READING_COLUMNS)))
SMALL_VARINTS = _SMALL
uvarint = _uvarint


@lru_cache(maxsize=64)
def _splitter(size: int, count: int) -> struct.Struct:
    return struct.Struct(f"{size}s" * count)


def uvarints(values: Sequence[int]) -> list[bytes]:
    """`uvarint` of each int in 0..2**63, for a batch at once: when they all take the same number of bytes
    (timestamps of one batch: 8) with numpy and one `unpack`, ~0.03 µs a value instead of ~0.2 µs."""
    if not values:
        return []
    low, high = min(values), max(values)
    if low < 0x4000 or high >= 1 << 63 or low.bit_length() // 7 != high.bit_length() // 7 or low < 0:
        return list(map(_uvarint, values))
    size = high.bit_length() // 7 + (high.bit_length() % 7 > 0)
    if (low.bit_length() + 6) // 7 != size:
        return list(map(_uvarint, values))
    groups = np.array(values, dtype=np.uint64)[:, None] >> (np.arange(size, dtype=np.uint64) * np.uint64(7))
    wire = (groups & np.uint64(0x7F)).astype(np.uint8)
    wire[:, :-1] |= 0x80
    return list(_splitter(size, len(values)).unpack(wire.tobytes()))


def encode_many(records: Sequence[Record]) -> list[bytes]:
    """Wire bytes of every column of each record except agent_id, schema_version, ingest_ts and is_replayed,
    also kept on the record (`Record.wire`); a record that has them already is not encoded again.

    One loop with everything inline: a function call per record and per value costs as much as the work.
    Raises TypeError / ValueError (UnicodeEncodeError) / AttributeError for a value that does not fit its
    column; the records before it keep their bytes.
    """
    out: list[bytes] = []
    cache, small, int64 = _tag_cache, _SMALL, _int64
    for record in records:
        wire = record.wire
        if wire is None:
            attributes = record.attributes
            key = (_tag_values(record), tuple(attributes.items()) if attributes else ())
            tag = cache.get(key)
            if tag is None:
                if len(cache) >= _CACHE_LIMIT:
                    cache.clear()
                tag = cache[key] = _tag_bytes(*key)
            rid, double, long, string, bit, raw, status, source_ts, server_ts, edge_ts, seq = _reading_values(record)
            if rid is None or edge_ts is None:
                raise ValueError("record_id and edge_ts are required")
            rid_bytes = rid.encode()  # a str, or AttributeError
            size = len(rid_bytes)
            ts = _uvarint(edge_ts) if type(edge_ts) is int and 0 <= edge_ts < 1 << 63 else int64(edge_ts)
            parts = [tag, _K_ID, small[size] if size < 0x4000 else _uvarint(size), rid_bytes, _K_EDGE_TS, ts]
            if double is not None:
                parts += (_K_DOUBLE, _double(double))
            if long is not None:
                parts += (_K_LONG, small[long] if type(long) is int and 0 <= long < 0x4000 else int64(long))
            if string is not None:
                parts += (_K_STRING, _str_encoder(string))
            if bit is not None:
                parts += (_K_BOOL, _bool_encoder(bit))
            if raw is not None:
                parts += (_K_RAW, _str_encoder(raw))
            if status is not None:
                parts += (_K_STATUS, int64(status))
            if source_ts is not None:
                parts += (_K_SOURCE_TS, int64(source_ts))
            if server_ts is not None:
                parts += (_K_SERVER_TS, int64(server_ts))
            if seq is not None:
                parts += (_K_SEQ, int64(seq))
            wire = record.wire = b"".join(parts)
        out.append(wire)
    return out


def _check_types() -> None:
    """The hand-written part above assumes these column types; fail at import if RECORD_FIELDS changes."""
    expected = {"record_id": pa.string(), "value_string": pa.string(), "value_raw": pa.string(),
                "value_double": pa.float64(), "value_bool": pa.bool_()}  # fmt: skip
    expected.update(
        dict.fromkeys(("value_long", "status_code", "source_ts", "server_ts", "edge_ts", "seq"), pa.int64())
    )
    wrong = [n for n, t in expected.items() if _TYPE.get(n) != t]
    if wrong:
        raise TypeError(f"model_wire: columns {wrong} changed type in RECORD_FIELDS; update encode_many")


_check_types()
