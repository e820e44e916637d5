"""Hostile payloads against the MQTT source on a real mosquitto: one bad message is rejected alone (counted,
logged, acknowledged), never drops the connection, and never costs a good message (clean or persistent session)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from iot_connector.sources.mqtt import MqttConfig, MqttSource
from tests.edge.sources.helpers import Collector, running
from tests.edge.sources.mosquitto import Mosquitto, Publisher

pytestmark = pytest.mark.integration
GOOD = 2000


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    broker = Mosquitto(tmp_path).start()
    yield broker
    broker.stop()


def publish_all(port: int, messages: list[tuple[str, bytes]]) -> None:
    """QoS 1, pipelined: wait for every PUBACK at the end."""
    pub = Publisher(port)
    try:
        infos = [pub.client.publish(topic, payload, qos=1) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(30)
    finally:
        pub.close()


async def until_connected(source: MqttSource) -> None:
    async with asyncio.timeout(10):
        while not source.health.connected:
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # SUBACK


@pytest.mark.parametrize("clean_start", [True, False], ids=["clean-session", "persistent-session"])
async def test_an_overflowing_timestamp_is_rejected_alone(broker, clean_start):
    topics = [{"topic": "plant/#", "value_path": "v", "timestamp_path": "ts", "timestamp_unit": "ms"}]
    extra = {} if clean_start else {"client_id": "hostile-persist"}
    config = MqttConfig(
        name="mq", url=broker.url, topics=topics, clean_start=clean_start, reconnect_min_delay_s=1, **extra
    )
    messages = [("plant/t", orjson.dumps({"v": i, "ts": 1_700_000_000_000 + i})) for i in range(GOOD)]
    for at, bad in enumerate([{"v": 1, "ts": 1e308}, {"v": 1, "ts": -1e308}, {"v": 1, "ts": 1e17}]):
        messages.insert(500 * (at + 1), ("plant/t", orjson.dumps(bad)))
    collector = Collector()
    source = MqttSource(config, collector)
    async with running(source):
        await until_connected(source)
        await asyncio.to_thread(publish_all, broker.port, messages)
        await collector.wait_for(lambda recs: len({r.value_long for r in recs}) >= GOOD, timeout=20)
        assert source.health.connected
    assert sorted({r.value_long for r in collector.records}) == list(range(GOOD))
    assert source.health.reconnects == 0  # the connection never dropped
    assert source.health.rejected == 3
