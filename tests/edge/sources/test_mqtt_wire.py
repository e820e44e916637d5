"""The batched MQTT receive path (wire.py): bulk-parsed PUBLISH packets mixed with packets paho handles,
against real mosquitto (plain and TLS, MQTT 3.1.1 and 5) and on streams cut at every byte."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from iot_connector.model import Record
from iot_connector.sources.mqtt import MqttConfig, MqttSource
from iot_connector.sources.mqtt.config import TopicConfig
from iot_connector.sources.mqtt.payloads import JsonMapper
from iot_connector.sources.mqtt.wire import PacketBuffer, Publish, pubacks, take_publishes
from tests.certs import TestCA
from tests.edge.sources.helpers import Collector, running
from tests.edge.sources.mosquitto import Mosquitto

pytestmark = pytest.mark.integration


def publish_packet(topic: bytes, payload: bytes, qos: int, mid: int, v5: bool, props: bytes = b"") -> bytes:
    body = struct.pack("!H", len(topic)) + topic + (struct.pack("!H", mid) if qos else b"")
    body += (bytes([len(props)]) + props if v5 else b"") + payload
    assert len(body) < 16384
    length = bytes([len(body) & 127 | 128, len(body) >> 7]) if len(body) > 127 else bytes([len(body)])
    return bytes([0x30 | qos << 1]) + length + body


@pytest.mark.parametrize("v5", [False, True])
def test_a_stream_cut_at_any_byte_parses_to_the_same_messages(v5):
    big = b"x" * 300  # two remaining-length bytes
    stream = [
        ("fast", publish_packet(b"a/1", b"1", 0, 0, v5)),
        ("fast", publish_packet(b"a/2", big, 1, 7, v5)),
        ("paho", b"\xd0\x00"),  # PINGRESP
        ("fast", publish_packet(b"a/\xc3\xa9", b"", 1, 65535, v5)),
        ("paho", publish_packet(b"a/3", b"q2", 2, 9, v5)),  # QoS 2: paho's handshake
    ]
    if v5:
        stream.append(("paho", publish_packet(b"a/4", b"p", 1, 10, v5, props=b"\x01\x01")))  # with a property
    stream.append(("fast", publish_packet(b"a/5", b"end", 1, 11, v5)))
    data = b"".join(packet for _, packet in stream)
    expected = [
        Publish("a/1", b"1", 0, 0, False),
        Publish("a/2", big, 1, 7, False),
        "paho",
        Publish("a/é", b"", 1, 65535, False),
        "paho",
        *(["paho"] if v5 else []),
        Publish("a/5", b"end", 1, 11, False),
    ]
    for cut in range(1, len(data)):
        buffer, got, out = PacketBuffer(None), [], []
        for chunk in (data[:cut], data[cut:]):
            buffer.buf, buffer.pos = buffer.buf[buffer.pos :] + chunk, 0
            while take_publishes(buffer, v5, out, {}):
                got += [*out, "paho"]
                out.clear()
                buffer.pos = buffer.limit  # what loop_read() consumes: exactly that one packet
            got += out
            out.clear()
        assert got == expected, f"cut at byte {cut}"


def test_pubacks_are_whole_packets_in_order():
    assert pubacks([1, 258, 65535]) == b"\x40\x02\x00\x01" + b"\x40\x02\x01\x02" + b"\x40\x02\xff\xff"


@pytest.fixture
def tls_setup(tmp_path: Path) -> Iterator[tuple[TestCA, Mosquitto]]:
    ca = TestCA(tmp_path)
    broker = Mosquitto(tmp_path, tls=(ca.files.cert, ca.issue("broker", server=True))).start()
    yield ca, broker
    broker.stop()


@pytest.fixture
def plain_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path).start()
    yield broker
    broker.stop()


def publisher(port: int, v5: bool, ca: str | None) -> mqtt.Client:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311)
    client.max_inflight_messages_set(0)
    if ca:
        client.tls_set(ca_certs=ca)
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def backlog(client: mqtt.Client, v5: bool, n: int) -> list[tuple[str, bytes]]:
    """n messages over 4 topics (one QoS each: 1, 1, 0, 2), MQTT 5 properties on some, a 600 KB payload (several
    reads). Returns what a persistent session must deliver: the broker does not queue QoS 0 while offline."""
    sent, info = [], None
    props = Properties(PacketTypes.PUBLISH)
    props.UserProperty = ("k", "v")
    for i in range(n):
        topic = f"wire/{i % 4}"
        payload = (b"%d:" % i) + (b"z" * 600_000 if i == n // 2 else b"")
        qos = (1, 1, 0, 2)[i % 4]
        extra = {"properties": props} if v5 and i % 8 == 1 else {}
        info = client.publish(topic, payload, qos=qos, **extra)
        if qos:
            sent.append((topic, payload))
    assert info is not None
    info.wait_for_publish(30)
    return sent


def persistent(url: str, v5: bool, **tls: str) -> MqttConfig:
    return MqttConfig(
        name="wire",
        url=url,
        client_id="wire-agent",
        clean_start=False,
        protocol_version="5" if v5 else "3.1.1",
        topics=[{"topic": "wire/#", "format": "raw", "qos": 2}],
        reconnect_min_delay_s=1,
        reconnect_max_delay_s=1,
        **tls,
    )


async def drain(cfg: MqttConfig, expected: int, settle: float) -> list[tuple[str, bytes]]:
    collector = Collector()
    source = MqttSource(cfg, collector)
    async with running(source):
        await collector.wait_for(lambda _: source.health.connected)
        if expected:
            await collector.wait_for(lambda recs: len(recs) >= expected, timeout=30)
        await asyncio.sleep(settle)  # anything more (a redelivery, a duplicate) would show up here
    return [(r.tag_id, (r.value_string or "").encode()) for r in collector.records]


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
@pytest.mark.parametrize("v5", [False, True], ids=["3.1.1", "5"])
async def test_a_backlog_arrives_once_in_order_and_its_acks_stick(v5, tls, request):
    if tls:
        ca, broker = request.getfixturevalue("tls_setup")
        url, tls_args = f"mqtts://127.0.0.1:{broker.port}", {"ca_file": str(ca.files.cert)}
    else:
        broker = request.getfixturevalue("plain_broker")
        url, tls_args = broker.url, {}
    cfg = persistent(url, v5, **tls_args)
    await drain(cfg, 0, 0.3)  # create the persistent session (subscription) and leave
    client = publisher(broker.port, v5, tls_args.get("ca_file"))
    try:
        sent = await asyncio.to_thread(backlog, client, v5, 2000)
    finally:
        client.disconnect()
        client.loop_stop()
    got = await drain(cfg, len(sent), 0.5)
    # once each, in order per topic (QoS 2 completes a round trip later, so topics interleave differently)
    assert sorted(got, key=lambda m: m[0]) == sorted(sent, key=lambda m: m[0])
    # Every QoS 1/2 message was acknowledged on the wire: the session has nothing to redeliver.
    assert await drain(cfg, 0, 1.0) == []


@pytest.mark.parametrize(
    ("unit", "ts", "expected_us"),
    [
        ("s", 1_700_000_000, 1_700_000_000_000_000),
        ("s", 1_700_000_000.25, 1_700_000_000_250_000),
        ("ms", 1_700_000_000_123, 1_700_000_000_123_000),
        ("us", 1_700_000_000_123_456, 1_700_000_000_123_456),
        ("ns", 1_700_000_000_123_456_789, 1_700_000_000_123_456),
        ("iso", "2023-11-14T22:13:20.5Z", 1_700_000_000_500_000),
    ],
)
def test_json_fast_paths_keep_every_timestamp_unit(unit, ts, expected_us):
    mapper = JsonMapper(TopicConfig(topic="t", value_path="v", timestamp_path="ts", timestamp_unit=unit))
    base = Record(source_id="s", protocol="mqtt", endpoint="mqtt://x", tag_id="t", data_type="")
    (rec,) = mapper.records(base, orjson.dumps({"v": 2.5, "ts": ts}))
    assert (rec.tag_id, rec.value_double, rec.source_ts) == ("t#v", 2.5, expected_us)
