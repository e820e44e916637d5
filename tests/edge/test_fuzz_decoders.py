"""Property-based tests (hypothesis) of every decoder with arbitrary and structured-but-hostile input.

The property, for each: any input becomes records or a rejection of that one message (MalformedPayload from
the MQTT decoders, `Source.reject` from the sources), never another exception; and the records made can
be encoded for the spool and ZeroBus, or are refused one by one by the buffer (`invalid_record`). Each
test is bounded (a few hundred examples, a deadline per example) so `make test` stays fast.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import math
import struct
import uuid
from datetime import timedelta

import orjson
import pytest
from asyncua import ua
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iot_connector.model import Record
from iot_connector.pipeline import codec
from iot_connector.pipeline.buffers import _encoded
from iot_connector.sources.modbus import ModbusConfig, ModbusSource
from iot_connector.sources.mqtt import MqttConfig, MqttSource
from iot_connector.sources.mqtt.identity import Arrivals
from iot_connector.sources.mqtt.payloads import MalformedPayload
from iot_connector.sources.mqtt.sparkplug import SparkplugDecoder
from iot_connector.sources.mqtt.sparkplug_pb import Payload
from iot_connector.sources.mqtt.wire import Publish
from iot_connector.sources.opcua import OpcuaConfig, OpcuaSource
from iot_connector.sources.opcua.nodes import Tag

FUZZ = settings(
    max_examples=250,
    deadline=timedelta(milliseconds=500),
    database=None,  # no .hypothesis folder in the repository; failures print the example to reproduce
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
U64 = st.integers(0, 2**64 - 1)
ANY_INT = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([0, -1, 2**63, -(2**63) - 1, 2**64]))
FLOATS = st.floats(allow_nan=True, allow_infinity=True)


async def _discard(_records) -> None:
    return None


def encodable_or_refused(records: list[Record]) -> None:
    """What the buffer does with them: no exception; the kept ones decode back to the same values."""
    kept, payloads, invalid = _encoded(records)
    assert len(kept) + len(invalid or []) == len(records)
    for record, payload in zip(kept, payloads):
        back = codec.decode(payload)
        assert (back.record_id, back.tag_id, back.edge_ts) == (record.record_id, record.tag_id, record.edge_ts)


# --- MQTT JSON and raw -----------------------------------------------------------------------------------
JSON = st.recursive(
    st.none() | st.booleans() | ANY_INT | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
    max_leaves=20,
)
TIMESTAMPS = st.one_of(
    st.sampled_from([1e308, -1e308, 1.7976931348623157e308, 5e-324, 1e19, 2**63, -(2**63), 253402300800]),
    ANY_INT,
    st.floats(allow_nan=False),  # orjson writes inf as null
    st.text(max_size=40),
    st.datetimes().map(lambda t: t.isoformat()),
    st.sampled_from(["9999-12-31T23:59:59Z", "0001-01-01T00:00:00", "2024-02-30T00:00:00", "1e308", ""]),
    JSON,
)


def mqtt_source(unit: str = "ms") -> MqttSource:
    topics = [
        {"topic": "j/#", "value_path": "v", "timestamp_path": "ts", "timestamp_unit": unit, "quality_path": "q"},
        {"topic": "deep/#", "value_path": "a.0.b"},
        {"topic": "whole/#"},
        {"topic": "raw/#", "format": "raw"},
        {"topic": "spBv1.0/#", "format": "sparkplugb"},
    ]
    source = MqttSource(MqttConfig(name="fuzz", url="mqtt://127.0.0.1:1", topics=topics), _discard)
    source.arrivals = Arrivals("fuzz", None, 100)
    return source


def convert(source: MqttSource, topic: str, payload: bytes) -> list[Record]:
    """The source's own per-batch conversion (what runs between the socket and emit)."""
    before = source.health.rejected
    records = source._to_records(None, [Publish(topic, payload, 1, 1, False)], [1_700_000_000_000_000])  # type: ignore[arg-type]
    rejected = source.health.rejected - before
    assert rejected <= 1 or topic.startswith("spBv1.0/")  # this one message (Sparkplug: per unsupported metric)
    encodable_or_refused(records)
    return records


@FUZZ
@given(
    topic=st.sampled_from(["j/a", "deep/a", "whole/a", "raw/a", "spBv1.0/g/NDATA/n"]), payload=st.binary(max_size=300)
)
def test_mqtt_arbitrary_bytes_on_every_format(topic: str, payload: bytes) -> None:
    convert(mqtt_source(), topic, payload)


@FUZZ
@given(
    unit=st.sampled_from(["s", "ms", "us", "ns", "iso"]),
    value=JSON,
    ts=TIMESTAMPS,
    quality=st.one_of(JSON, st.sampled_from(["GOOD", "bad", "Uncertain", 0x80000000, 2**40, -1])),
    drop=st.sets(st.sampled_from(["v", "ts", "q"])),
)
def test_mqtt_json_mapping_with_hostile_values(unit: str, value, ts, quality, drop: set[str]) -> None:
    doc = {k: v for k, v in {"v": value, "ts": ts, "q": quality}.items() if k not in drop}
    try:
        payload = orjson.dumps(doc, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:  # ints beyond 64 bits: write them as text, as a device could
        payload = (
            repr(doc)
            .replace("'", '"')
            .replace("None", "null")
            .replace("True", "true")
            .replace("False", "false")
            .encode()
        )
    source = mqtt_source(unit)
    records = convert(source, "j/x", payload)
    mapper = source._mappers[id(source.config.topics[0])]
    try:  # the decoder itself says MalformedPayload or gives records, nothing else
        mapper.records(Record("fuzz", "mqtt", "e", "j/x", ""), payload)
    except MalformedPayload:
        assert not records


# --- Sparkplug B -----------------------------------------------------------------------------------------
METRIC = st.fixed_dictionaries(
    {},
    optional={
        "name": st.text(max_size=12),
        "alias": U64,
        "timestamp": U64,
        "datatype": st.one_of(st.integers(0, 40), st.integers(0, 2**32 - 1)),
        "is_historical": st.booleans(),
        "is_null": st.booleans(),
        "int_value": st.integers(0, 2**32 - 1),
        "long_value": U64,
        "float_value": st.floats(width=32),
        "double_value": FLOATS,
        "boolean_value": st.booleans(),
        "string_value": st.text(max_size=20),
        "bytes_value": st.binary(max_size=20),
    },
)


def sparkplug_bytes(timestamp: int | None, seq: int | None, metrics: list[dict], junk: bytes) -> bytes:
    message = Payload()
    if timestamp is not None:
        message.timestamp = timestamp
    if seq is not None:
        message.seq = seq
    for metric in metrics:
        message.metrics.add(**metric)
    return message.SerializeToString() + junk


@FUZZ
@given(
    kind=st.sampled_from(["NBIRTH", "DBIRTH", "NDATA", "DDATA", "NDEATH", "DDEATH", "NCMD", "STATE", "BOGUS"]),
    device=st.sampled_from(["", "/d1", "/d1/extra"]),
    timestamp=st.none() | U64,
    seq=st.none() | U64,
    metrics=st.lists(METRIC, max_size=6),
    junk=st.sampled_from([b"", b"\xff", b"\x12\x02\x0a\xff", b"\x7a\x01\xff"]),
)
def test_sparkplug_hostile_messages(kind: str, device: str, timestamp, seq, metrics, junk: bytes) -> None:
    payload = sparkplug_bytes(timestamp, seq, metrics, junk)
    topic = f"spBv1.0/g/{kind}/n{device}"
    decoder = SparkplugDecoder("fuzz", "mqtt://e")
    for born in ("NBIRTH", kind):  # also against a born alias table
        with contextlib.suppress(MalformedPayload):
            encodable_or_refused(decoder.decode(topic.replace(kind, born), payload, 1).records)
    convert(mqtt_source(), topic, payload)


def test_sparkplug_invalid_utf8_names_and_strings_are_rejected_before_any_alias_changes() -> None:
    good = sparkplug_bytes(1, 0, [{"name": "ok", "alias": 1, "datatype": 12, "string_value": "x"}], b"")
    decoder = SparkplugDecoder("fuzz", "mqtt://e")
    decoder.decode("spBv1.0/g/NBIRTH/n", good, 1)
    bad_name = good.replace(b"\x0a\x02ok", b"\x0a\x02\xff\xfe")
    with pytest.raises(MalformedPayload, match="not UTF-8"):
        decoder.decode("spBv1.0/g/NBIRTH/n", bad_name, 1)
    assert decoder.state.aliases[("g", "n", "")] == {1: ("ok", 12)}
    with pytest.raises(MalformedPayload, match="string value is not UTF-8"):
        decoder.decode("spBv1.0/g/NDATA/n", good.replace(b"z\x01x", b"z\x01\xff"), 1)


def test_an_unsupported_sparkplug_metric_is_rejected_and_the_others_arrive() -> None:
    source = mqtt_source()
    rejected: list[tuple] = []
    source.on_reject = lambda *args: rejected.append(args)
    payload = sparkplug_bytes(
        1, 0, [{"name": "table", "datatype": 16}, {"name": "t", "datatype": 10, "double_value": 2.5}], b""
    )
    records = convert(source, "spBv1.0/g/NDATA/n", payload)
    assert [(r.tag_id, r.value_double) for r in records] == [("g/n/t", 2.5)]
    assert [(where, reason) for _, where, reason, _ in rejected] == [
        ("topic spBv1.0/g/NDATA/n", "metric g/n/table: datatype 16 (DataSet) is not decoded")
    ]


# --- Modbus ----------------------------------------------------------------------------------------------
REGISTER = st.fixed_dictionaries(
    {
        "data_type": st.sampled_from(["int16", "uint16", "int32", "uint32", "float32", "float64", "string"]),
        "byte_order": st.sampled_from(["big", "little"]),
        "word_order": st.sampled_from(["big", "little"]),
        "scale": st.one_of(FLOATS, st.sampled_from([1.0, 0.1, 1e308, -1e-308])),
        "offset": st.one_of(FLOATS, st.just(0.0)),
    }
)


@FUZZ
@given(
    registers=st.lists(REGISTER, min_size=1, max_size=5),
    coils=st.integers(0, 3),
    words=st.lists(st.one_of(st.integers(0, 0xFFFF), ANY_INT, st.none(), FLOATS), max_size=20),
    bits=st.lists(st.one_of(st.booleans(), st.none(), ANY_INT), max_size=5),
)
def test_modbus_register_decoding_with_hostile_words(registers: list[dict], coils: int, words, bits) -> None:
    maps, address = [], 0
    for i, reg in enumerate(registers):
        count = 3 if reg["data_type"] == "string" else 1
        maps.append({"name": f"r{i}", "table": "holding", "address": address, "count": count, **reg})
        address += {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "float64": 4}.get(
            reg["data_type"], 3
        )
    maps += [{"name": f"c{i}", "table": "coil", "address": i, "data_type": "bool"} for i in range(coils)]
    source = ModbusSource(ModbusConfig(name="fuzz", url="modbus+tcp://127.0.0.1:1", registers=maps), _discard)
    for index, block in enumerate(source.blocks):
        data = bits if block.table == "coil" else words
        records = source.decode_block(index, data, 1)
        assert len(records) + source.health.rejected >= len(block.tags) or len(records) <= len(block.tags)
        encodable_or_refused(records)


def test_a_short_modbus_response_loses_only_the_tags_it_does_not_cover() -> None:
    maps = [
        {"name": "a", "address": 0, "data_type": "uint16"},
        {"name": "b", "address": 1, "data_type": "float32"},
        {"name": "c", "address": 3, "data_type": "int16"},
    ]
    source = ModbusSource(ModbusConfig(name="fuzz", url="modbus+tcp://127.0.0.1:1", registers=maps), _discard)
    rejected: list[tuple] = []
    source.on_reject = lambda *args: rejected.append(args)
    records = source.decode_block(0, [7, 0x4049, 0x0FDB, 70000], 1)  # c's word is beyond 16 bits
    assert [(r.tag_path, r.value_long) for r in records] == [("a", 7), ("b", None)]
    assert math.isclose(records[1].value_double, 3.1415927, rel_tol=1e-6)
    assert [(src, where) for src, where, _, _ in rejected] == [("fuzz", "register hr:3:int16:AB")]
    assert records == source.decode_block(0, [7, 0x4049, 0x0FDB], 1)  # short: c is missing, a and b arrive


# --- OPC UA ----------------------------------------------------------------------------------------------
DATETIMES = st.one_of(
    st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
    st.datetimes(timezones=st.just(dt.timezone.utc)),
    st.sampled_from([dt.datetime.min, dt.datetime.max, dt.datetime(1601, 1, 1)]),
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    ANY_INT,
    FLOATS,
    st.text(max_size=20),
    st.binary(max_size=20),
    DATETIMES,
    st.uuids(),
    st.builds(ua.NodeId, st.integers(0, 2**32 - 1), st.integers(0, 65535)),
    st.builds(ua.QualifiedName, st.text(max_size=5), st.integers(0, 65535)),
    st.builds(ua.LocalizedText, st.text(max_size=5)),
    st.builds(ua.StatusCode, st.integers(0, 2**32 - 1)),
    st.builds(ua.ExtensionObject),
)
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4), max_leaves=12)


@FUZZ
@given(
    values=st.lists(
        st.tuples(
            VALUES,
            st.sampled_from(list(ua.VariantType)),
            st.none() | st.integers(0, 2**32 - 1),
            st.none() | DATETIMES,
            st.none() | DATETIMES,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_opcua_variant_conversion_with_hostile_values(values) -> None:
    config = OpcuaConfig(name="fuzz", endpoint="opc.tcp://127.0.0.1:1/", nodes=["ns=1;s=x"])
    source = OpcuaSource(config, _discard)
    tag = Tag(node_id=ua.NodeId("x", 1), tag_id="nsu=urn:x;s=x", name="x", monitoring=config.monitoring)
    pairs = []
    for value, vtype, status, source_ts, server_ts in values:
        variant = ua.Variant.__new__(ua.Variant)  # as decoded off the wire: no type check on construction
        variant.Value, variant.VariantType, variant.Dimensions, variant.is_array = value, vtype, None, False
        dv = ua.DataValue.__new__(ua.DataValue)
        dv.Value, dv.StatusCode = variant, ua.StatusCode(status) if status is not None else None
        dv.SourceTimestamp, dv.ServerTimestamp = source_ts, server_ts
        dv.Encoding, dv.SourcePicoseconds, dv.ServerPicoseconds = 0, None, None
        pairs.append((tag, dv))
    records = source._records_each(pairs)
    assert len(records) + source.health.rejected == len(values)
    encodable_or_refused(records)


# --- the Record encoder ----------------------------------------------------------------------------------
HOSTILE = st.one_of(
    st.none(), st.booleans(), ANY_INT, FLOATS, st.text(max_size=10), st.binary(max_size=5), st.just({"k": 1})
)


@FUZZ
@given(fields=st.dictionaries(st.sampled_from(list(Record.__dataclass_fields__)[:-1]), HOSTILE, max_size=6))
def test_the_record_encoder_refuses_bad_values_alone(fields: dict) -> None:
    fields.pop("wire", None)
    good = Record("s", "mqtt", "e", "t", "", value_double=1.0).finalize()
    bad = Record("s", "mqtt", "e", "t", "").finalize()
    for name, value in fields.items():
        setattr(bad, name, value)
    kept, _, invalid = _encoded([good, bad, Record("s", "mqtt", "e", "t2", "").finalize()])
    assert good in kept  # the neighbours are never refused with it
    assert len(kept) + len(invalid or []) == 3
    encodable_or_refused(kept)


def test_float_bit_patterns_survive_the_encoder() -> None:
    for bits in (0x7FF8000000000001, 0xFFF0000000000000, 0x0000000000000001):
        value = struct.unpack("<d", bits.to_bytes(8, "little"))[0]
        record = Record("s", "mqtt", "e", "t", "", value_double=value, record_id=str(uuid.uuid4()))
        back = codec.decode(codec.encode(record)).value_double
        assert struct.pack("<d", back) == struct.pack("<d", value)
