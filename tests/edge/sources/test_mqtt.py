"""MQTT source against Debian mosquitto on 127.0.0.1: JSON/raw/Sparkplug B, TLS, restarts, redelivery."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import yaml
from pydantic import ValidationError

from iot_connector.sources.mqtt import MqttConfig, MqttSource
from iot_connector.sources.mqtt.sparkplug import SparkplugDecoder
from iot_connector.sources.mqtt.sparkplug_pb import Payload
from tests.certs import TestCA
from tests.edge.sources.helpers import Collector, FailsOnce, running
from tests.edge.sources.mosquitto import Mosquitto, Publisher

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path).start()
    yield broker
    broker.stop()


@pytest.fixture
def publisher(broker: Mosquitto) -> Iterator[Publisher]:
    pub = Publisher(broker.port)
    yield pub
    pub.close()


def config(url: str, topics: list[dict], **extra) -> MqttConfig:
    return MqttConfig(name="mq", url=url, topics=topics, reconnect_min_delay_s=1, reconnect_max_delay_s=1, **extra)


async def wait_subscribed(source: MqttSource, publisher: Publisher, collector: Collector, topic: str) -> None:
    """Publish probes until one arrives: the subscription is live (bounded)."""
    for _ in range(100):
        publisher.publish(topic, b"probe", qos=0)
        await asyncio.sleep(0.05)
        if any(r.tag_id.startswith(topic) for r in collector.records):
            collector.records.clear()
            return
    raise AssertionError(f"subscription never became live: {source.health}")


async def test_json_paths_wildcards_qos_and_raw_payloads(broker, publisher):
    topics = [
        {"topic": "sensors/+/temperature", "qos": 1, "value_path": "v", "timestamp_path": "ts", "quality_path": "q"},
        {"topic": "lines/#", "qos": 0, "value_path": "fields"},
        {"topic": "probe", "format": "raw"},
        {"topic": "status/+", "format": "raw", "qos": 2},
    ]
    collector = Collector()
    source = MqttSource(config(broker.url, topics), collector)
    async with running(source):
        await wait_subscribed(source, publisher, collector, "probe")
        publisher.publish("sensors/s1/temperature", orjson.dumps({"v": 21.5, "ts": 1700000000123, "q": "GOOD"}))
        publisher.publish("sensors/s2/temperature", orjson.dumps({"v": 7, "ts": 1700000000456, "q": False}))
        publisher.publish(
            "lines/a/b", orjson.dumps({"fields": {"speed": 3.25, "count": 12, "mode": "auto", "on": True}})
        )
        publisher.publish("status/pump", b"42.5", qos=2)
        publisher.publish("status/valve", b"\xff\x00open", qos=2)
        await collector.wait_for(lambda recs: len(recs) >= 8)
    got = {r.tag_id: r for r in collector.records}
    s1 = got["sensors/s1/temperature#v"]
    assert (s1.value_double, s1.source_ts, s1.quality, s1.attributes["qos"]) == (21.5, 1700000000123000, "GOOD", "1")
    s2 = got["sensors/s2/temperature#v"]
    assert (s2.value_long, s2.quality) == (7, "BAD")
    assert got["lines/a/b#fields.speed"].value_double == 3.25
    assert got["lines/a/b#fields.count"].value_long == 12
    assert got["lines/a/b#fields.mode"].value_string == "auto"
    assert got["lines/a/b#fields.on"].value_bool is True
    assert got["lines/a/b#fields.on"].attributes["qos"] == "0"  # the subscription's QoS caps delivery
    assert (got["status/pump"].value_string, got["status/pump"].value_double) == ("42.5", 42.5)
    assert got["status/valve"].data_type == "bytes"
    assert source.health.records_read >= 8


async def test_malformed_payloads_are_counted_and_never_stop_the_source(broker, publisher, caplog):
    topics = [
        {"topic": "j/+", "value_path": "v", "timestamp_path": "t", "timestamp_unit": "s"},
        {"topic": "probe", "format": "raw"},
        {"topic": "spBv1.0/#", "format": "sparkplugb"},
    ]
    collector = Collector()
    source = MqttSource(config(broker.url, topics), collector)
    rejected: list[tuple[str, str, str, bytes | None]] = []
    source.on_reject = lambda *args: rejected.append(args)
    async with running(source):
        await wait_subscribed(source, publisher, collector, "probe")
        for payload in (b"{not json", b'{"x": 1}', b'{"v": 1}', b'{"v": 1, "t": "yesterday"}', b"[1,2"):
            publisher.publish("j/bad", payload)
        publisher.publish("spBv1.0/g/NDATA/n1", b"\xff\xff\xff garbage")
        publisher.publish("spBv1.0/g/NOPE", b"")
        publisher.publish("j/good", b'{"v": 5, "t": 1700000000}')
        await collector.wait_for(lambda recs: any(r.tag_id == "j/good#v" for r in recs))
    assert source.health.rejected == 7
    assert source.health.details["rejected"] == "7"
    good = next(r for r in collector.records if r.tag_id == "j/good#v")
    assert (good.value_long, good.source_ts) == (5, 1700000000 * 1_000_000)
    reasons = {(where, reason) for _, where, reason, _ in rejected}
    assert ("topic j/bad", "no value at path 'v'") in reasons
    assert ("topic j/bad", "timestamp 'yesterday' is not an ISO 8601 time") in reasons
    assert rejected[0][::3] == ("mq", b"{not json")  # source and payload, for the dead letters
    assert "mqtt source mq: rejected topic j/bad: not JSON" in caplog.text  # the first one is logged at once
    assert "spBv1.0/g/NOPE" in (source.health.last_error or "")


def spb(metrics: list[dict], seq: int, ts: int = 1700000000000) -> bytes:
    message = Payload(timestamp=ts, seq=seq)
    for metric in metrics:
        message.metrics.add(**metric)
    return message.SerializeToString()


async def test_sparkplug_birth_aliases_data_types_and_rebirth_request(broker, publisher):
    topics = [{"topic": "spBv1.0/#", "format": "sparkplugb", "qos": 1}, {"topic": "probe", "format": "raw"}]
    collector = Collector()
    source = MqttSource(config(broker.url, topics, request_rebirth=True), collector)
    rebirths = Collector()
    watcher = Publisher(broker.port)
    watcher.client.on_message = lambda _c, _u, msg: rebirths.records.append(Payload.FromString(msg.payload))
    watcher.client.subscribe("spBv1.0/plant/NCMD/+", qos=1)
    try:
        async with running(source):
            await wait_subscribed(source, publisher, collector, "probe")
            publisher.publish(
                "spBv1.0/plant/NBIRTH/edge1", spb([{"name": "Uptime", "alias": 1, "datatype": 8, "long_value": 5}], 0)
            )
            birth = [
                {"name": "temp", "alias": 10, "datatype": 9, "float_value": 1.5},
                {"name": "delta", "alias": 11, "datatype": 1, "int_value": 2**8 - 3},  # Int8 -3, Python tahu encoding
                {"name": "offset", "alias": 12, "datatype": 3, "int_value": 2**32 - 7},  # Int32 -7
                {"name": "big", "alias": 13, "datatype": 4, "long_value": 2**64 - 9},  # Int64 -9
                {"name": "run", "alias": 14, "datatype": 11, "boolean_value": True},
                {"name": "label", "alias": 15, "datatype": 12, "string_value": "A"},
                {"name": "t0", "alias": 16, "datatype": 13, "long_value": 1700000000001},
            ]
            publisher.publish("spBv1.0/plant/DBIRTH/edge1/press", spb(birth, 1))
            data = [
                {"alias": 10, "float_value": 2.5, "timestamp": 1700000000500},
                {"alias": 11, "int_value": 2**8 - 100},
                {"alias": 13, "long_value": 42},
                {"alias": 14, "boolean_value": False},
                {"alias": 15, "is_null": True},
                {"alias": 99, "double_value": 1.0},  # never born
            ]
            publisher.publish("spBv1.0/plant/DDATA/edge1/press", spb(data, 2, ts=1700000000600))
            await collector.wait_for(lambda recs: len(recs) >= 1 + 7 + 6)
            for _ in range(100):
                if rebirths.records:
                    break
                await asyncio.sleep(0.05)
    finally:
        watcher.close()
    births = {r.tag_id: r for r in collector.records if r.attributes["spb_message_type"] == "DBIRTH"}
    assert births["plant/edge1/press/delta"].value_long == -3
    assert births["plant/edge1/press/offset"].value_long == -7
    assert births["plant/edge1/press/big"].value_long == -9
    assert births["plant/edge1/press/t0"].data_type == "DateTime"
    data_recs = {r.tag_id: r for r in collector.records if r.attributes["spb_message_type"] == "DDATA"}
    temp = data_recs["plant/edge1/press/temp"]
    assert (temp.value_double, temp.data_type, temp.protocol) == (2.5, "Float", "sparkplugb")
    assert (temp.source_ts, temp.server_ts, temp.seq) == (1700000000500000, 1700000000600000, 2)
    assert data_recs["plant/edge1/press/delta"].value_long == -100
    assert data_recs["plant/edge1/press/big"].value_long == 42
    assert data_recs["plant/edge1/press/run"].value_bool is False
    assert data_recs["plant/edge1/press/label"].quality == "BAD"
    unknown = data_recs["plant/edge1/press/alias:99"]
    assert unknown.quality == "UNCERTAIN"
    assert source.sparkplug.state.unknown_aliases == 1
    assert rebirths.records, "no rebirth request was published"
    assert rebirths.records[0].metrics[0].name == "Node Control/Rebirth"


async def test_broker_restart_resumes_without_restarting_the_source(broker, publisher):
    collector = Collector()
    source = MqttSource(
        config(broker.url, [{"topic": "probe", "format": "raw"}, {"topic": "t", "format": "raw"}]), collector
    )
    async with running(source):
        await wait_subscribed(source, publisher, collector, "probe")
        publisher.publish("t", b"1")
        await collector.wait_for(lambda recs: len(recs) == 1)
        publisher.close()
        broker.stop()
        await collector.wait_for(lambda _: not source.health.connected)
        broker.start()
        pub2 = Publisher(broker.port)
        try:
            await wait_subscribed(source, pub2, collector, "probe")
            pub2.publish("t", b"2")
            await collector.wait_for(lambda recs: any(r.value_string == "2" for r in recs))
        finally:
            pub2.close()
    assert source.health.reconnects >= 1


async def test_readings_without_a_timestamp_get_distinct_record_ids(broker, publisher):
    """A burst of one topic without source timestamps, read from the socket at once, still gives every
    reading its own record_id (else downstream de-duplication by record_id would drop distinct values; found
    by the container test, tests/deploy/test_image.py) and its own, strictly increasing edge_ts."""
    collector = Collector()
    source = MqttSource(config(broker.url, [{"topic": "probe", "format": "raw"}, {"topic": "t"}]), collector)
    async with running(source):
        await wait_subscribed(source, publisher, collector, "probe")
        for i in range(300):
            publisher.client.publish("t", str(i).encode(), qos=0)  # no wait: the broker sends them in bursts
        await collector.wait_for(lambda recs: len(recs) >= 300)
    readings = [record.finalize() for record in collector.records if record.tag_id.startswith("t")]
    assert sorted(r.value_long for r in readings) == list(range(300))
    assert len({r.record_id for r in readings}) == 300
    stamps = [r.edge_ts for r in readings]
    assert stamps == sorted(set(stamps))  # strictly increasing: one source never stamps two readings alike


def persistent(url: str, version: str = "5") -> MqttConfig:
    return config(
        url,
        [{"topic": "orders/#", "format": "raw", "qos": 1}],
        client_id="agent-persist",
        clean_start=False,
        protocol_version=version,
    )


@pytest.mark.parametrize("version", ["5", "3.1.1"])
async def test_unaccepted_messages_are_redelivered_to_a_persistent_session(broker, publisher, version):
    # 1. A source whose pipeline never accepts: messages arrive but are never acknowledged; then it dies.
    stuck = asyncio.Event()

    async def never_returns(_records) -> None:
        stuck.set()
        await asyncio.Event().wait()

    first = MqttSource(persistent(broker.url, version), never_returns)
    assert "connected" in await first.test_connection()  # a probe with its own id: leaves the session alone
    task = asyncio.create_task(first.run())
    for _ in range(100):
        if first.health.connected:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)  # SUBACK
    for i in range(5):
        publisher.publish("orders/a", str(i).encode())
    await asyncio.wait_for(stuck.wait(), 10)
    task.cancel()  # like a crash: nothing was acknowledged
    await asyncio.gather(task, return_exceptions=True)
    # 2. While the agent is away the broker keeps queueing for the session.
    for i in range(5, 10):
        publisher.publish("orders/a", str(i).encode())
    # 3. The agent comes back with the same client id: everything arrives.
    collector = Collector()
    async with running(MqttSource(persistent(broker.url, version), collector)):
        await collector.wait_for(lambda recs: {r.value_string for r in recs} >= {str(i) for i in range(10)})


async def test_emit_failure_drops_the_session_and_the_broker_redelivers(broker, publisher):
    calls = fails_once = FailsOnce()

    source = MqttSource(persistent(broker.url), fails_once)
    async with running(source):
        for _ in range(100):
            if source.health.connected:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        publisher.publish("orders/x", b"only-once")
        await calls.wait_for(lambda recs: any(r.value_string == "only-once" for r in recs))
    assert source.health.reconnects >= 1


async def test_username_and_password(tmp_path: Path):
    broker = Mosquitto(tmp_path, users={"agent": "pa55"}).start()
    try:
        topics = [{"topic": "x"}]
        ok = MqttSource(config(broker.url, topics, username="agent", password="pa55"), Collector())
        assert "connected" in await ok.test_connection()
        wrong = MqttSource(config(broker.url, topics, username="agent", password="nope"), Collector())
        with pytest.raises(ConnectionError, match="refused the connection") as refused:
            await wrong.test_connection()
        assert "nope" not in str(refused.value)
        async with running(wrong):
            for _ in range(40):
                if wrong.health.last_error:
                    break
                await asyncio.sleep(0.05)
        assert "refused" in (wrong.health.last_error or "")
        assert not wrong.health.connected
    finally:
        broker.stop()


@pytest.fixture
def tls_broker(tmp_path: Path):
    ca = TestCA(tmp_path)
    broker = Mosquitto(tmp_path, tls=(ca.files.cert, ca.issue("broker", server=True)), require_client_cert=True).start()
    yield ca, broker
    broker.stop()


async def test_mutual_tls_with_generated_certificates(tls_broker):
    ca, broker = tls_broker
    client = ca.issue("agent", server=False)
    url = f"mqtts://127.0.0.1:{broker.port}"
    publisher = Publisher(broker.port, ca_certs=str(ca.files.cert), certfile=str(client.cert), keyfile=str(client.key))
    collector = Collector()
    cfg = config(
        url,
        [{"topic": "probe", "format": "raw"}],
        ca_file=str(ca.files.cert),
        cert_file=str(client.cert),
        key_file=str(client.key),
    )
    source = MqttSource(cfg, collector)
    try:
        assert "connected to mqtts://" in await source.test_connection()
        async with running(source):
            await wait_subscribed(source, publisher, collector, "probe")
    finally:
        publisher.close()
    # Without a client certificate the broker refuses the TLS handshake: a clear error, no crash.
    no_cert = MqttSource(config(url, [{"topic": "probe", "format": "raw"}], ca_file=str(ca.files.cert)), Collector())
    with pytest.raises(ConnectionError, match="cannot reach mqtts://"):
        await no_cert.test_connection()
    async with running(no_cert):
        await asyncio.sleep(1.0)
        assert not no_cert.health.connected


async def test_server_only_tls_and_wrong_ca(tmp_path: Path):
    ca = TestCA(tmp_path)
    broker = Mosquitto(tmp_path, tls=(ca.files.cert, ca.issue("broker", server=True))).start()
    try:
        url = f"mqtts://127.0.0.1:{broker.port}"
        ok = MqttSource(config(url, [{"topic": "x"}], ca_file=str(ca.files.cert)), Collector())
        assert "connected" in await ok.test_connection()
        (tmp_path / "other").mkdir()
        other = TestCA(tmp_path / "other", cn="someone-else")
        bad = MqttSource(config(url, [{"topic": "x"}], ca_file=str(other.files.cert)), Collector())
        with pytest.raises(ConnectionError, match=r"CERTIFICATE_VERIFY_FAILED|certificate verify failed"):
            await bad.test_connection()
    finally:
        broker.stop()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url": "tcp://h:1883"}, "scheme must be mqtt:// or mqtts://"),
        ({"url": "mqtt://user:pw@h"}, "not in the URL"),
        ({"clean_start": False}, "requires a fixed client_id"),
        ({"cert_file": "c.pem"}, "go together"),
        ({"ca_file": "ca.pem"}, "need an mqtts://"),
        ({"topics": [{"topic": "a/#/b"}]}, "'#' must be a whole level and the last"),
        ({"topics": [{"topic": "a/b+"}]}, "'\\+' must be a whole level"),
        ({"topics": [{"topic": "a", "format": "raw", "value_path": "v"}]}, "apply only to format json"),
        ({"topics": [{"topic": "a/#", "format": "sparkplugb"}]}, "start with spBv1.0/"),
        ({"topics": [{"topic": "a", "qos": 3}]}, "qos"),
        ({"topics": []}, "topics"),
        ({"tpoics": []}, "tpoics"),
    ],
)
def test_bad_configs_name_what_is_wrong(change, message):
    data = {"name": "m", "url": "mqtt://h:1883", "topics": [{"topic": "a"}], **change}
    with pytest.raises(ValidationError, match=re.compile(message, re.S)):
        MqttConfig.model_validate(data)


def test_password_never_shows_in_the_config_repr():
    cfg = MqttConfig(name="m", url="mqtt://h", username="u", password="hunter2", topics=[{"topic": "a"}])
    assert "hunter2" not in repr(cfg)
    assert "hunter2" not in str(cfg.model_dump())


def test_sample_config_loads():
    sample = Path(__file__).parents[3] / "src/iot_connector/sources/mqtt/sample.yaml"
    cfg = MqttConfig.model_validate(yaml.safe_load(sample.read_text()))
    assert [t.format for t in cfg.topics] == ["json", "raw", "sparkplugb"]


def test_sparkplug_death_and_new_birth_reset_alias_tables():
    decoder = SparkplugDecoder("s", "mqtt://x")
    decoder.decode("spBv1.0/g/NBIRTH/n", spb([{"name": "a", "alias": 1, "datatype": 3, "int_value": 1}], 0), 1)
    decoder.decode("spBv1.0/g/DBIRTH/n/d", spb([{"name": "b", "alias": 2, "datatype": 10, "double_value": 1}], 1), 1)
    ddata = spb([{"alias": 2, "double_value": 4.0}], 2)
    assert decoder.decode("spBv1.0/g/DDATA/n/d", ddata, 1).records[0].tag_id == "g/n/d/b"
    assert decoder.decode("spBv1.0/g/NDEATH/n", spb([], 3), 1).records == []
    after_death = decoder.decode("spBv1.0/g/DDATA/n/d", ddata, 1)
    assert after_death.records[0].tag_id == "g/n/d/alias:2"  # kept, flagged, rebirth asked
    assert after_death.records[0].value_double == 4.0
    assert after_death.rebirth_topic == "spBv1.0/g/NCMD/n"
    assert decoder.decode("spBv1.0/STATE/host", b"ONLINE", 1).records == []
    historical = spb([{"name": "a", "datatype": 3, "int_value": 5, "is_historical": True}], 4)
    assert decoder.decode("spBv1.0/g/NDATA/n", historical, 1).records[0].attributes["is_historical"] == "true"
