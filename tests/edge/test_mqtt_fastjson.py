"""The MQTT source's fast path for the common JSON shape (sources/mqtt/fastjson.py) makes exactly the
records, rejections and protobuf bytes the general path makes, for any payload and topic mapping."""

from __future__ import annotations

import json
import time
from dataclasses import fields
from datetime import timedelta

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iot_connector.model import Record
from iot_connector.model_wire import encode_many, uvarint, uvarints
from iot_connector.sources.mqtt import MqttConfig, MqttSource
from iot_connector.sources.mqtt.fastjson import convert
from iot_connector.sources.mqtt.identity import Arrivals
from iot_connector.sources.mqtt.source import _BY_INDEX

SETTINGS = settings(
    max_examples=300,
    deadline=timedelta(milliseconds=500),
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TOPICS = [  # every shape the fast path takes, and mappings it must leave to the general path
    {"topic": "us/#", "value_path": "v", "timestamp_path": "ts", "timestamp_unit": "us", "unit": "bar"},
    {"topic": "ms/#", "value_path": "v", "timestamp_path": "ts", "timestamp_unit": "ms"},
    {"topic": "s/#", "value_path": "v", "timestamp_path": "ts", "timestamp_unit": "s"},
    {"topic": "ns/#", "value_path": "v", "timestamp_path": "ts", "timestamp_unit": "ns"},
    {"topic": "iso/#", "value_path": "v", "timestamp_path": "ts", "timestamp_unit": "iso"},
    {"topic": "nots/#", "value_path": "v"},
    {"topic": "whole/#"},
    {"topic": "q/#", "value_path": "v", "quality_path": "q"},
    {"topic": "deep/#", "value_path": "a.v", "timestamp_path": "ts"},
    {"topic": "raw/#", "format": "raw"},
]
VALUES = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 0x3FFF, 0x4000, 2**63 - 1, -(2**63), 2**63, -(2**63) - 1, True, False, None, "7", {"a": 1}]),
)
STAMPS = st.one_of(
    st.integers(-(2**66), 2**66),
    st.sampled_from([0, 0x3FFF, 0x4000, 1_733_000_000_000_000, 253_402_300_799_999_999, 253_402_300_800_000_000]),
    st.floats(allow_nan=False),
    st.just("2024-01-01T00:00:00Z"),
    st.none(),
)


def _dumps(doc: object) -> bytes:
    return json.dumps(doc).encode()  # not orjson: it refuses the integers beyond 64 bits a sender may send


PAYLOADS = st.one_of(
    st.builds(lambda v, ts: _dumps({"v": v, "ts": ts}), VALUES, STAMPS),
    st.builds(lambda v: _dumps({"v": v}), VALUES),
    st.builds(_dumps, VALUES),
    st.builds(lambda v, q: _dumps({"v": v, "q": q}), VALUES, st.sampled_from([True, "bad", 0x80000000])),
    st.builds(lambda v: _dumps({"a": {"v": v}, "ts": 1}), VALUES),
    st.sampled_from([b"", b"{", b"not json", b'{"v": 1', b"[1, 2]", b'{"ts": 5}', b"\xff\xfe"]),
)
MESSAGES = st.lists(
    st.tuples(
        st.sampled_from([t["topic"][:-1] + "a" for t in TOPICS] + ["unmapped/a"]),
        PAYLOADS,
        st.sampled_from([0, 1]),
        st.booleans(),
    ),
    min_size=1,
    max_size=20,
)


def _source() -> MqttSource:
    config = MqttConfig(name="fast", url="mqtt://127.0.0.1:1", topics=[*TOPICS])
    source = MqttSource(config, lambda _records: None)  # type: ignore[arg-type, return-value]
    source.arrivals = Arrivals("fast", None, 100)
    return source


def _records(source: MqttSource, messages: list, fast: bool) -> tuple[list[Record], int]:
    """The records of `messages` with the fast path on or off (same ids, same stamps), and the rejections."""
    batch = [
        (topic, payload, qos, i + 1 if qos else 0, retain, False)
        for i, (topic, payload, qos, retain) in enumerate(messages)
    ]
    stamps = list(range(1_733_000_000_000_000, 1_733_000_000_000_000 + len(batch)))
    ids = [f"ab:1:{i:x}:0" for i in range(len(batch))]
    before = source.health.rejected
    plan = source._plan if fast else (lambda _topic: None)
    records = convert(
        batch,
        stamps,
        ids,
        {},
        plan,
        "fast",
        source.config.url,
        _BY_INDEX,
        lambda m, e, b: source._general(None, m, e, b),
    )  # type: ignore[arg-type]
    return records, source.health.rejected - before


def _without_wire(record: Record) -> Record:
    return Record(**{f.name: getattr(record, f.name) for f in fields(Record) if f.init})


@SETTINGS
@given(MESSAGES)
def test_the_fast_path_makes_the_general_paths_records_and_bytes(messages: list) -> None:
    source = _source()
    fast, fast_rejected = _records(source, messages, fast=True)
    general, general_rejected = _records(source, messages, fast=False)
    assert fast == general  # every column, record_id included
    assert fast_rejected == general_rejected
    for record in fast:
        if record.wire is not None:  # built by the fast path: the bytes encode_many writes for that record
            assert record.wire == encode_many([_without_wire(record)])[0]


def test_the_usual_payload_takes_the_fast_path() -> None:
    source = _source()
    ts = time.time_ns() // 1000
    records, rejected = _records(source, [("us/a", orjson.dumps({"v": 21.5, "ts": ts}), 1, False)], fast=True)
    assert rejected == 0
    assert records[0].wire is not None  # encoded on the way: the spool does not encode it again
    assert (records[0].value_double, records[0].source_ts, records[0].tag_id) == (21.5, ts, "us/a#v")


@settings(max_examples=200, database=None)
@given(st.lists(st.integers(0, 2**63 - 1), max_size=50) | st.lists(st.integers(2**49, 2**56 - 1), max_size=50))
def test_batch_varints_equal_single_ones(values: list[int]) -> None:
    assert uvarints(values) == [uvarint(v) for v in values]
