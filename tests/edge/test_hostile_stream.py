"""End to end against hostile input: `iot-connector run` (spool, Delta sink) subscribed to a real mosquitto
that carries a few hundred hostile payloads of every kind mixed into a stream of good ones. Every good
message lands, every hostile one is counted and kept as a dead letter, and the agent stays up and connected."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import orjson
import pytest
import requests
from deltalake import DeltaTable

from iot_connector.pipeline.deadletters import FILE_NAME
from iot_connector.sources.mqtt.sparkplug_pb import Payload
from tests.edge.sources.helpers import free_port
from tests.edge.sources.mosquitto import Mosquitto
from tests.edge.sources.test_mqtt_hostile import publish_all
from tests.edge.test_agent import _start, _wait

pytestmark = pytest.mark.integration
GOOD = 3000


def spb(metrics: list[dict], timestamp: int = 1_700_000_000_000) -> bytes:
    message = Payload(timestamp=timestamp, seq=0)
    for metric in metrics:
        message.metrics.add(**metric)
    return message.SerializeToString()


def hostile() -> list[tuple[str, bytes]]:
    """(topic, payload) of every kind that must be rejected, each certain to be."""
    name_ok = spb([{"name": "ok", "datatype": 12, "string_value": "x"}])
    kinds: list[tuple[str, bytes]] = [
        ("plant/j", b""),
        ("plant/j", b"{not json"),
        ("plant/j", b"\xff\xfe\x00garbage"),
        ("plant/j", b"[1, 2"),
        ("plant/j", b"null"),
        ("plant/j", b'"just a string"'),
        ("plant/j", b'{"x": 1}'),
        ("plant/j", b'{"v": 1, "ts": 1e308}'),
        ("plant/j", b'{"v": 1, "ts": -1e308}'),
        ("plant/j", b'{"v": 1, "ts": 1e17}'),
        ("plant/j", b'{"v": 1, "ts": 99999999999999999999999}'),
        ("plant/j", b'{"v": 1, "ts": "yesterday"}'),
        ("plant/j", b'{"v": 1, "ts": true}'),
        ("plant/j", b'{"v": 1, "ts": [1]}'),
        ("plant/j", b'{"v": 1, "ts": 1700000000000, "q": [1]}'),
        ("plant/j", b'{"v": 1, "ts": 1700000000000, "q": "maybe"}'),
        ("plant/j", b'{"v": "\\ud800", "ts": 1700000000000}'),
        ("plant/j", b"[" * 2000 + b"]" * 2000),
        ("plant/j", b'{"v": 1, "ts": 1700000000000' + b" " * 300_000 + b"x}"),
        ("spBv1.0/g/NDATA/n1", b"\xff\xff\xff garbage"),
        ("spBv1.0/g/NOPE/n1", name_ok),
        ("spBv1.0/g/NBIRTH", name_ok),
        ("spBv1.0/g/NBIRTH/n1", name_ok.replace(b"\x0a\x02ok", b"\x0a\x02\xff\xfe")),
        ("spBv1.0/g/NDATA/n1", name_ok.replace(b"z\x01x", b"z\x01\xff")),
        ("spBv1.0/g/NDATA/n1", spb([{"name": "t", "datatype": 10, "double_value": 1.0, "timestamp": 2**64 - 1}])),
        ("spBv1.0/g/NDATA/n1", spb([{"name": "t", "datatype": 10, "double_value": 1.0}], timestamp=2**63)),
        ("spBv1.0/g/DDATA/n1/d1", b"\x0a"),
    ]
    return [kinds[i % len(kinds)] for i in range(11 * len(kinds))]  # 297 messages, 27 kinds


@pytest.mark.slow
def test_hostile_payloads_of_every_kind_never_cost_a_good_message(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path).start()
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    metrics_port = free_port()
    state = {
        "agent_id": "hostile",
        "metrics": {"port": metrics_port, "host": "127.0.0.1"},
        "pipeline": {"batch_max_records": 500, "batch_max_wait_ms": 20, "drain_timeout_s": 1},
        "sources": [
            {
                "name": "line1",
                "type": "mqtt",
                "url": broker.url,
                "clean_start": True,  # the case where a dropped connection lost whatever was in flight
                "batch_size": 200,
                "topics": [
                    {"topic": "plant/#", "value_path": "v", "timestamp_path": "ts", "quality_path": "q"},
                    {"topic": "spBv1.0/#", "format": "sparkplugb"},
                ],
            }
        ],
    }
    (config_dir / "connector_state.json").write_text(json.dumps(state))
    bad = hostile()
    messages: list[tuple[str, bytes]] = []
    for i in range(GOOD):
        messages.append(("plant/j", orjson.dumps({"v": i, "ts": 1_700_000_000_000 + i, "q": "GOOD"})))
        if i % 10 == 0 and bad:
            messages.append(bad.pop())
    assert not bad
    agent = _start(config_dir)
    metrics = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        _wait(lambda: _metric(metrics, 'iot_connection_status{source="line1"}') == 1, 30, "the source to connect")
        _subscribed(broker.port, config_dir)
        publish_all(broker.port, messages)
        _wait(lambda: len(_values(config_dir)) >= GOOD, 60, "every good message in the table")
        failed = 'iot_records_failed_total{error_type="malformed_payload",source="line1"}'
        _wait(lambda: _metric(metrics, failed) == len(hostile()), 10, "every hostile message counted")
        assert agent.poll() is None  # still running
        assert _metric(metrics, 'iot_connection_status{source="line1"}') == 1
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
        broker.stop()
    assert agent.returncode == 0, err[-3000:]
    assert _values(config_dir) == list(range(GOOD))
    assert "reconnect" not in err  # the connection never dropped
    assert "mqtt source line1: rejected topic " in err  # logged (one line a second at most)
    letters = [orjson.loads(line) for line in (config_dir / "spool" / FILE_NAME).read_bytes().splitlines()]
    assert len(letters) == len(hostile())
    assert {(e["where"], e["reason"]) for e in letters} >= {
        ("topic plant/j", "timestamp 1e+308 (ms) is not a finite number of microseconds"),
        ("topic plant/j", "no value at path 'v'"),
        ("topic spBv1.0/g/NDATA/n1", "metric 'ok': string value is not UTF-8"),
    }
    assert len({e["reason"] for e in letters}) >= 20  # the kinds are told apart


def _subscribed(port: int, config_dir: Path) -> None:
    """Probe until one lands: with a clean session, messages published before the SUBACK are not ours."""
    for _ in range(50):
        publish_all(port, [("plant/probe", b'{"v": -1, "ts": 1700000000000}')])
        try:
            _wait(lambda: -1 in _values(config_dir, "plant/probe#v"), 0.5, "the probe")
            return
        except AssertionError:
            continue
    raise AssertionError("the subscription never became live")


def _metric(url: str, name: str) -> float | None:
    try:
        text = requests.get(url, timeout=5).text
    except requests.ConnectionError:
        return None
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def _values(config_dir: Path, tag: str = "plant/j#v") -> list[int]:
    path = config_dir / "data" / "iot_records"
    if not DeltaTable.is_deltatable(str(path)):
        return []
    rows = DeltaTable(str(path)).to_pyarrow_table(columns=["value_long", "tag_id"]).to_pylist()
    return sorted({r["value_long"] for r in rows if r["tag_id"] == tag})
