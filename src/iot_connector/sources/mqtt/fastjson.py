"""The common MQTT JSON message turned into its Record and spool bytes in one step, a batch at a time.

Why: per message, the general path (`JsonMapper.records` on a `Record` built by keyword, `record_ids`,
then `model_wire.encode_many` looking up the tag columns) is ~6 µs of Python on the agent's one event-loop
thread, the drain's bottleneck. Most messages have one shape: a JSON object with a number at one key and,
optionally, an integer timestamp at another (`{"v": 21.5, "ts": 1733...}`), or a bare JSON number. For
those this loop builds the Record positionally and writes its protobuf bytes (`Record.wire`, which the
spool stores and ZeroBus sends) from bytes cached per topic: ~2 µs. Every other message (another shape, a
bool or string value, an object of values, a float or ISO timestamp, quality paths, malformed JSON, times
before 1970) goes through the general path unchanged, so errors are reported exactly as before. The
records are equal to the general path's and so are their bytes (tests/edge/test_mqtt_fastjson.py).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

import orjson

from iot_connector.model import Record
from iot_connector.model_wire import _HIGH, _LOW, READING_KEYS, SMALL_VARINTS, tag_wire, uvarint, uvarints
from iot_connector.sources.mqtt.config import TopicConfig
from iot_connector.sources.mqtt.payloads import _MAX_US, _UNIT_US

_K_ID, _K_EDGE_TS, _K_DOUBLE, _K_LONG, _K_SOURCE_TS = (
    READING_KEYS[n] for n in ("record_id", "edge_ts", "value_double", "value_long", "source_ts")
)
(_K_DOUBLE_BYTE,) = _K_DOUBLE  # a one-byte key: packed with the value
_pack_double = struct.Struct("<Bd").pack
_MISSING = object()
_INT64_MIN, _INT64_END, _UINT64_MASK = -(1 << 63), 1 << 63, (1 << 64) - 1
Message = tuple[str, bytes, int, int, bool, bool]  # wire.Message: (topic, payload, qos, mid, retain, dup)
General = Callable[[Message, int, str], list[Record]]  # (message, edge_ts, id base) -> records, the usual way
Attributes = Sequence[dict[str, str]]  # a message's attributes, by qos * 2 + retain


def _simple_key(path: str | None) -> str | bool | None:
    """The one object key of a dotted path, None for the whole payload, False if the path is anything else."""
    keys = [k for k in (path or "").split(".") if k]
    if not keys:
        return None
    return keys[0] if len(keys) == 1 and not keys[0].lstrip("-").isdigit() else False


class _Plan:
    """One topic's precomputed parts: names, unit, the JSON keys, and the tag bytes per (type, qos, retain)."""

    __slots__ = ("float_tags", "int_tags", "mult", "tag_id", "ts_key", "unit", "value_key")

    def __init__(self, topic: str, sub: TopicConfig, value_key: str | None, ts_key: str | None, mult: int):
        self.tag_id = topic + (f"#{sub.value_path}" if sub.value_path else "")
        self.unit = sub.unit
        self.value_key, self.ts_key, self.mult = value_key, ts_key, mult
        # the tag columns' bytes of a float / int reading, by qos * 2 + retain
        self.float_tags: list[bytes | None] = [None] * 6
        self.int_tags: list[bytes | None] = [None] * 6


def plan_for(topic: str, sub: TopicConfig) -> _Plan | None:
    """The fast plan of a topic's JSON mapping, or None when the mapping is not the simple shape."""
    if sub.format != "json" or sub.quality_path:
        return None
    value_key = _simple_key(sub.value_path)
    ts_key = _simple_key(sub.timestamp_path) if sub.timestamp_path else None
    if value_key is False or ts_key is False or (ts_key is not None and sub.timestamp_unit not in _UNIT_US):
        return None
    return _Plan(topic, sub, value_key, ts_key, _UNIT_US.get(sub.timestamp_unit, 1))  # type: ignore[arg-type]


def convert(
    messages: Sequence[Message],
    stamps: Sequence[int],
    ids: Sequence[str],
    plans: dict[str, _Plan | None],
    plan: Callable[[str], _Plan | None],
    source_id: str,
    endpoint: str,
    attributes: Attributes,
    general: General,
) -> list[Record]:
    """The records of `messages` (edge_ts `stamps`; `ids`: the record_id of each message's first record, from
    `Arrivals.number_many`) in order: the simple shape here, everything else through `general` (given the
    id base, the first id without its last digit). `plans` caches `plan(topic)` per topic; `attributes`
    are the records' (shared) attribute dicts by qos * 2 + retain."""
    out: list[Record] = []
    append = out.append
    loads, missing, small, join = orjson.loads, _MISSING, SMALL_VARINTS, b"".join
    low, highs = _LOW, _HIGH
    for message, edge_ts, edge_wire, rid in zip(messages, stamps, uvarints(stamps), ids):
        topic = message[0]
        p: Any = plans.get(topic, missing)
        if p is missing:
            if len(plans) >= 100_000:  # bounded: topics with ids in them must not grow memory
                plans.clear()
            p = plans[topic] = plan(topic)
        if p is not None:
            try:
                doc: Any = loads(message[1])
            except orjson.JSONDecodeError:
                doc = missing
            key = p.value_key
            value: Any = doc if key is None else doc.get(key, missing) if type(doc) is dict else missing
            kind = type(value)
            fast = kind is float or (kind is int and _INT64_MIN <= value < _INT64_END)
            if fast:
                ts = None
                ts_key, ts_low, ts_high = b"", b"", b""  # the source_ts column's bytes, parts of the join below
                if p.ts_key is not None:
                    raw = doc.get(p.ts_key) if type(doc) is dict else None
                    ts = raw * p.mult if type(raw) is int else -1
                    if 0 <= ts <= _MAX_US:
                        ts_key = _K_SOURCE_TS
                        high = highs.get(ts >> 14) if ts >= 0x4000 else None  # uvarint(ts), inline (its cache)
                        if high is not None:
                            ts_low, ts_high = low[ts & 0x3FFF], high
                        else:
                            ts_high = uvarint(ts)
                    else:  # absent, not an int, before 1970 or after 9999: the general path says what
                        fast = False
                if fast:
                    index = message[2] * 2 + message[4]  # (qos, retain)
                    if kind is float:
                        long, data_type, double, tags = None, "float", value, p.float_tags
                        long_wire = b""
                    else:
                        long, data_type, double, tags = value, "int", float(value), p.int_tags
                        long_wire = _K_LONG + (small[long] if 0 <= long < 0x4000 else uvarint(long & _UINT64_MASK))
                    record = Record(
                        source_id, "mqtt", endpoint, p.tag_id, data_type, "GOOD", double, long, None, None, None,
                        None, ts, None, edge_ts, None, topic, p.unit, attributes[index], False, None, rid,
                    )  # fmt: skip
                    tag = tags[index]
                    if tag is None:
                        tag = tags[index] = tag_wire(record)
                    double_wire = _pack_double(_K_DOUBLE_BYTE, double)
                    id_size = small[len(rid)]
                    parts = (
                        tag,
                        _K_ID,
                        id_size,
                        rid.encode(),
                        _K_EDGE_TS,
                        edge_wire,
                        double_wire,
                        long_wire,
                        ts_key,
                        ts_low,
                        ts_high,
                    )
                    record.wire = join(parts)
                    append(record)
                    continue
        out += general(message, edge_ts, rid[:-1])
    return out
