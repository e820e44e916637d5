"""The whole edge path with real parts: mosquitto -> MQTT source -> agent pipeline (spool) -> ZeroBus double
(real SDK), including a ZeroBus outage in the middle; the user sees every published value once per record_id."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from iot_connector.agent import Agent
from iot_connector.config import parse_config
from tests.edge.sources.mosquitto import Mosquitto, Publisher
from tests.edge.test_zerobus import TABLE
from tests.edge.zerobus_double import ZerobusDouble

pytestmark = pytest.mark.integration


async def test_mqtt_to_zerobus_through_an_outage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    broker = Mosquitto(tmp_path).start()
    try:
        with ZerobusDouble() as zb:
            config = parse_config(
                {
                    "agent_id": "e2e",
                    "metrics": {"enabled": False},
                    "pipeline": {"batch_max_records": 50, "batch_max_wait_ms": 10, "retry": {"max_backoff_s": 0.2}},
                    "sink": {
                        "type": "zerobus",
                        "workspace_url": zb.workspace_url,
                        "zerobus_endpoint": zb.endpoint,
                        "client_id": zb.client_id,
                        "client_secret": zb.client_secret,
                        "table": TABLE,
                        "recovery_retries": 0,
                        "recovery_timeout_ms": 1000,
                    },
                    "sources": [
                        {
                            "name": "line1",
                            "type": "mqtt",
                            "url": broker.url,
                            "topics": [
                                {
                                    "topic": "plant/+/temp",
                                    "value_path": "v",
                                    "timestamp_path": "ts",
                                    "timestamp_unit": "ms",
                                }
                            ],
                        }
                    ],
                }
            )
            agent = Agent(config, tmp_path)
            stop = asyncio.Event()
            running = asyncio.create_task(agent.run(stop))
            async with asyncio.timeout(30):
                while not agent.sources[0].health.connected:
                    await asyncio.sleep(0.05)
            publisher = Publisher(broker.port)
            try:
                await asyncio.to_thread(_publish, publisher, range(100))
                async with asyncio.timeout(30):
                    while zb.count(TABLE) < 100:
                        await asyncio.sleep(0.05)
                zb.down = True
                await asyncio.to_thread(_publish, publisher, range(100, 200))
                async with asyncio.timeout(30):
                    while agent.pipeline.buffer.depth < 100:  # accepted into the spool while ZeroBus is down
                        await asyncio.sleep(0.05)
                zb.down = False
                async with asyncio.timeout(60):
                    while agent.pipeline.buffer.depth:
                        await asyncio.sleep(0.05)
            finally:
                publisher.close()
                stop.set()
                await running
    finally:
        broker.stop()
    rows = zb.rows(TABLE)
    by_id = {r["record_id"]: r for r in rows}
    assert len(by_id) == 200
    values = sorted(r["value_double"] for r in by_id.values())
    assert values == [float(i) for i in range(200)]
    row = next(r for r in by_id.values() if r["value_double"] == 42.0)
    assert row["tag_id"] == "plant/m2/temp#v"  # topic + JSON path: stable per value
    assert int(row["source_ts"]) == (1_700_000_000_000 + 42) * 1000
    assert (row["protocol"], row["source_id"], row["agent_id"]) == ("mqtt", "line1", "e2e")


def _publish(publisher: Publisher, numbers: range) -> None:
    for i in numbers:
        publisher.publish(f"plant/m{i % 4}/temp", json.dumps({"v": i, "ts": 1_700_000_000_000 + i}))
