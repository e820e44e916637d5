"""JSON and raw MQTT payloads to Records. A payload that cannot be mapped raises MalformedPayload."""

from __future__ import annotations

import base64
import contextlib
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

from iot_connector.model import Quality, Record
from iot_connector.sources.mqtt.config import TopicConfig

_MISSING = object()
_UNIT_US: dict[str, int] = {"s": 1_000_000, "ms": 1000, "us": 1}  # "ns" is scaled where used: ints exactly (// 1000)
_QUALITY_WORDS: dict[str, Quality] = {"good": "GOOD", "ok": "GOOD", "bad": "BAD", "uncertain": "UNCERTAIN"}


class MalformedPayload(ValueError):
    """The message cannot become records; it is counted, logged and acknowledged (a retry cannot fix it)."""


def set_value(rec: Record, value: Any) -> Record:
    """Fill the typed value columns from a JSON value: scalars typed, null is BAD, the rest JSON in value_raw."""
    if rec.set_scalar(value):
        pass
    elif value is None:
        rec.quality = "BAD"
    else:
        rec.value_raw = orjson.dumps(value).decode()
    return rec


def _getter(path: str | None) -> Callable[[Any], Any]:
    """A function that walks a dotted path (`a.b.0.c`; digits index lists), returning _MISSING if absent."""
    keys = [k for k in (path or "").split(".") if k]
    if len(keys) == 1 and not keys[0].lstrip("-").isdigit():  # the common {"v": ..., "ts": ...} shape
        key = keys[0]
        return lambda doc: doc.get(key, _MISSING) if type(doc) is dict else _MISSING

    def get(doc: Any) -> Any:
        for key in keys:
            if isinstance(doc, dict):
                doc = doc.get(key, _MISSING)
            elif isinstance(doc, list) and key.lstrip("-").isdigit() and -len(doc) <= int(key) < len(doc):
                doc = doc[int(key)]
            else:
                return _MISSING
            if doc is _MISSING:
                return _MISSING
        return doc

    return get


# Timestamps a Record can hold and a datetime can show: years 1 to 9999, in microseconds.
_MIN_US, _MAX_US = -62_135_596_800_000_000, 253_402_300_799_999_999


def _timestamp_us(value: Any, unit: str) -> int:
    """Epoch microseconds; MalformedPayload for anything else, including NaN/inf and times past year 9999."""
    if type(value) is int and unit != "iso":  # the common case first
        us = value * _UNIT_US[unit] if unit != "ns" else value // 1000
    elif unit == "iso" or isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
            us = int(parsed.timestamp() * 1_000_000)
        except (ValueError, OverflowError) as exc:
            raise MalformedPayload(f"timestamp {value!r} is not an ISO 8601 time") from exc
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        scaled = value * _UNIT_US[unit] if unit != "ns" else value * 0.001
        if not math.isfinite(scaled):
            raise MalformedPayload(f"timestamp {value!r} ({unit}) is not a finite number of microseconds")
        us = int(scaled)
    else:
        raise MalformedPayload(f"timestamp {value!r} is not a number or ISO 8601 string")
    if not _MIN_US <= us <= _MAX_US:  # the message only when needed: this runs for every message
        raise MalformedPayload(f"timestamp {value!r} ({unit}) is outside the years 1 to 9999")
    return us


def checked_us(us: int, what: str, *args: object) -> int:
    """`us` if a Record (and a datetime) can hold it, else MalformedPayload naming `what % args` (formatted
    only then: this runs for every value)."""
    if not _MIN_US <= us <= _MAX_US:
        raise MalformedPayload(f"{what % args} is outside the years 1 to 9999")
    return us


def _quality(value: Any) -> tuple[Quality, int | None]:
    """bool, a word (good/ok/bad/uncertain) or an OPC UA StatusCode (severity in the top two bits)."""
    if isinstance(value, bool):
        return ("GOOD" if value else "BAD"), None
    if isinstance(value, int):
        severity = (value >> 30) & 0x3
        return ("GOOD", "UNCERTAIN", "BAD", "BAD")[severity], value
    if isinstance(value, str) and value.lower() in _QUALITY_WORDS:
        return _QUALITY_WORDS[value.lower()], None
    raise MalformedPayload(f"quality {value!r} is not a bool, GOOD/BAD/UNCERTAIN or a status code")


class JsonMapper:
    """Maps one topic's JSON payloads; the paths are compiled once per subscription."""

    def __init__(self, topic: TopicConfig):
        self.topic = topic
        self.value = _getter(topic.value_path)
        self.timestamp = _getter(topic.timestamp_path) if topic.timestamp_path else None
        self.quality = _getter(topic.quality_path) if topic.quality_path else None
        self.suffix = f"#{topic.value_path}" if topic.value_path else ""

    def records(self, base: Record, payload: bytes) -> list[Record]:
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise MalformedPayload(f"not JSON: {exc}") from exc
        value = self.value(doc)
        if value is _MISSING:
            raise MalformedPayload(f"no value at path {self.topic.value_path!r}")
        if self.timestamp is not None:
            ts = self.timestamp(doc)
            if ts is _MISSING:
                raise MalformedPayload(f"no timestamp at path {self.topic.timestamp_path!r}")
            base.source_ts = _timestamp_us(ts, self.topic.timestamp_unit)
        if self.quality is not None:
            q = self.quality(doc)
            if q is not _MISSING:
                base.quality, base.status_code = _quality(q)
        base.tag_id = base.tag_id + self.suffix
        if isinstance(value, dict):
            return [
                _child(base, f"{base.tag_id}.{key}" if self.suffix else f"{base.tag_id}#{key}", v)
                for key, v in value.items()
            ]
        base.data_type = type(value).__name__
        return [set_value(base, value)]


def _child(base: Record, tag_id: str, value: Any) -> Record:
    rec = Record(
        source_id=base.source_id,
        protocol=base.protocol,
        endpoint=base.endpoint,
        tag_id=tag_id,
        data_type=type(value).__name__,
        quality=base.quality,
        status_code=base.status_code,
        source_ts=base.source_ts,
        edge_ts=base.edge_ts,
        tag_path=tag_id,
        unit=base.unit,
        attributes=dict(base.attributes),
    )
    return set_value(rec, value)


def raw_records(base: Record, payload: bytes) -> list[Record]:
    """Text payloads become value_string (and value_double when numeric); binary ones base64 in value_raw."""
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        base.data_type, base.value_raw = "bytes", base64.b64encode(payload).decode()
        return [base]
    base.data_type, base.value_string, base.value_raw = "string", text, text
    with contextlib.suppress(ValueError):
        base.value_double = float(text)
    return [base]
