"""record_id is one per reading: distinct MQTT readings (identical payloads, with or without timestamps)
never share one, and a message the broker redelivers (after a crash or kill -9) keeps the id it had."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections import Counter
from pathlib import Path

import orjson
import pytest
from deltalake import DeltaTable

from iot_connector.model import Record
from iot_connector.sources.mqtt import MqttConfig, MqttSource
from iot_connector.sources.mqtt.identity import Arrivals, record_ids
from tests.edge.sources.helpers import Collector, running
from tests.edge.sources.mosquitto import Mosquitto, Publisher
from tests.edge.test_agent import _start, _wait

pytestmark = pytest.mark.integration


def reading(i: int) -> bytes:
    """Five values, half without a timestamp, the other half with one of three: many identical payloads."""
    doc = {"v": i % 5} if i % 2 else {"v": i % 5, "ts": 1_700_000_000_000 + i % 3}
    return orjson.dumps(doc)


def persistent(url: str) -> MqttConfig:
    topics = [{"topic": "plant/#", "value_path": "v", "timestamp_path": None}]
    return MqttConfig(name="line1", url=url, topics=topics, client_id="ids-agent", clean_start=False)


async def test_a_redelivery_after_a_crash_keeps_its_ids(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path).start()
    publisher = Publisher(broker.port)
    try:
        seen: list[tuple[str, int | None]] = []
        stuck = asyncio.Event()

        async def never_acknowledges(records) -> None:  # the pipeline took them, then the agent "crashed"
            seen.extend((r.record_id, r.value_long) for r in records)
            if len(seen) >= 40:
                stuck.set()
                await asyncio.Event().wait()

        first = MqttSource(persistent(broker.url), never_acknowledges)
        first.state_dir = tmp_path / "state"
        task = asyncio.create_task(first.run())
        async with asyncio.timeout(10):
            while not first.health.connected:
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.3)
        for i in range(40):
            publisher.publish("plant/a", b'{"v": 7}' if i % 2 else reading(i))  # 20 identical payloads
        async with asyncio.timeout(10):
            await stuck.wait()
        task.cancel()  # like kill -9: nothing acknowledged
        await asyncio.gather(task, return_exceptions=True)

        collector = Collector()
        second = MqttSource(persistent(broker.url), collector)
        second.state_dir = tmp_path / "state"
        async with running(second):
            await collector.wait_for(lambda recs: len(recs) >= 40)
            publisher.publish("plant/a", b'{"v": 7}')  # a new reading, identical to 20 before it
            await collector.wait_for(lambda recs: len(recs) >= 41)
    finally:
        publisher.close()
        broker.stop()
    first_ids = [rid for rid, _ in seen]
    again = [r.record_id for r in collector.records]
    assert len(set(first_ids)) == 40  # identical payloads, still 40 readings
    assert again[:40] == first_ids  # the broker's redelivery, same ids
    assert again[40] not in first_ids  # the new identical reading is a new id


def _rows(config_dir: Path) -> list[dict]:
    path = config_dir / "data" / "iot_records"
    if not DeltaTable.is_deltatable(str(path)):
        return []
    columns = ["record_id", "value_long", "source_ts", "tag_id"]
    return DeltaTable(str(path)).to_pyarrow_table(columns=columns).to_pylist()


@pytest.mark.slow
def test_kill_9_of_the_agent_distinct_readings_distinct_ids_redeliveries_same_id(tmp_path: Path) -> None:
    total = 3000
    broker = Mosquitto(tmp_path).start()
    config_dir = tmp_path / "cfg"
    config_dir.mkdir()
    state = {
        "agent_id": "ids",
        "metrics": {"enabled": False},
        "pipeline": {"batch_max_records": 200, "batch_max_wait_ms": 20, "drain_timeout_s": 1},
        "sources": [
            {
                "name": "line1",
                "type": "mqtt",
                "url": broker.url,
                "client_id": "ids-agent",
                "clean_start": False,
                "batch_size": 100,
                "topics": [{"topic": "plant/#", "value_path": "v", "timestamp_path": "ts"}],
            }
        ],
    }
    state["sources"][0]["topics"] = [
        {"topic": "plant/ts", "value_path": "v", "timestamp_path": "ts"},
        {"topic": "plant/plain", "value_path": "v"},
    ]
    (config_dir / "connector_state.json").write_text(json.dumps(state))
    published: Counter[tuple[str, bytes]] = Counter()
    done = threading.Event()

    def publish() -> None:
        pub = Publisher(broker.port)
        try:
            for i in range(total):
                topic = "plant/plain" if i % 2 else "plant/ts"
                pub.publish(topic, reading(i))
                published[(topic, reading(i))] += 1
        finally:
            pub.close()
            done.set()

    agent = _start(config_dir)
    try:
        _wait(lambda: (config_dir / "spool" / "sources" / "mqtt-line1.epoch").exists(), 30, "the source to start")
        threading.Event().wait(1.0)  # subscribed: the broker keeps the session's messages from now on
        threading.Thread(target=publish, daemon=True).start()
        _wait(lambda: len(_rows(config_dir)) >= total // 4, 60, "a quarter of the readings in the table")
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.communicate(timeout=10)
    assert agent.returncode == -signal.SIGKILL
    agent = _start(config_dir)  # same session: the broker redelivers what was not acknowledged
    try:
        _wait(done.is_set, 120, "the publisher")
        _wait(lambda: len({r["record_id"] for r in _rows(config_dir)}) >= total, 120, "every reading")
        threading.Event().wait(1.0)  # late duplicates, if any, would show now
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
        broker.stop()
    assert agent.returncode == 0, err[-2000:]
    rows = _rows(config_dir)
    by_id: dict[str, set[tuple]] = {}
    for row in rows:
        by_id.setdefault(row["record_id"], set()).add((row["tag_id"], row["value_long"], row["source_ts"]))
    assert len(by_id) == total  # distinct readings = distinct ids: no reading lost, none merged, no new ids
    assert all(len(readings) == 1 for readings in by_id.values())  # a duplicate row is the same reading
    per_reading = Counter(next(iter(readings)) for readings in by_id.values())
    expected = Counter()
    for (topic, payload), n in published.items():
        doc = orjson.loads(payload)
        ts = (doc["ts"] * 1000) if "ts" in doc else None
        expected[(f"{topic}#v", doc["v"], ts)] += n
    assert per_reading == expected  # each identical payload counted as often as it was published


def test_the_journal_survives_restarts_stays_small_and_ignores_a_torn_entry(tmp_path: Path) -> None:
    first = Arrivals("s", tmp_path, window=100)
    numbers = [first.number(mid, False, 1, "t", b"same") for mid in range(1, 1001)]
    first.write()
    assert (tmp_path / "mqtt-s.journal").stat().st_size <= 2 * 100 * 24 + 24 * 1000  # compacted as it grows
    with open(tmp_path / "mqtt-s.journal", "ab") as f:
        f.write(b"\x01\x02\x03")  # a write cut short by the crash
    second = Arrivals("s", tmp_path, window=100)
    assert second.epoch == first.epoch + 1
    assert second.number(1000, True, 1, "t", b"same") == numbers[-1]  # a redelivery of a recent message
    assert second.number(1, True, 1, "t", b"same") == f"{second.prefix}0:"  # too old to be unacknowledged
    assert second.number(999, True, 1, "t", b"other") == f"{second.prefix}1:"  # same packet id, other content
    assert second.number(7, False, 0, "t", b"same") == f"{second.prefix}2:"  # QoS 0 is never redelivered
    assert numbers[-1] == f"{first.tag}:{first.epoch:x}:{999:x}:"
    assert record_ids(numbers[-1], 1) == [numbers[-1] + "0"]
    assert record_ids("b:", 11)[-1] == "b:a"


def test_readings_without_timestamp_or_sequence_get_distinct_ids() -> None:
    base = {"source_id": "s", "protocol": "opcua", "endpoint": "e", "tag_id": "t", "data_type": "Double"}
    same_instant = [Record(**base, value_double=1.0, edge_ts=1).finalize() for _ in range(1000)]
    assert len({r.record_id for r in same_instant}) == 1000
    stamped = [Record(**base, value_double=1.0, source_ts=5, edge_ts=i).finalize() for i in range(2)]
    assert stamped[0].record_id == stamped[1].record_id  # the same reading read twice (e.g. OPC UA republish)


def test_an_unusable_state_folder_keeps_ids_unique_and_says_so(tmp_path: Path, caplog) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")
    one, two = Arrivals("s", blocked, 10), Arrivals("s", blocked, 10)
    assert one.number(1, False, 1, "t", b"x") != two.number(1, False, 1, "t", b"x")  # random epochs
    one.write()
    assert "cannot keep MQTT arrival numbers" in caplog.text


def test_numbering_a_batch_equals_numbering_one_by_one(tmp_path: Path) -> None:
    """`number_many` (the drain's path) gives the ids and redelivery answers `number` gives, across pruning
    and compaction of the journal and a restart."""
    one, many = Arrivals("s", tmp_path / "one", window=50), Arrivals("s", tmp_path / "many", window=50)
    assert one.epoch == many.epoch == 1
    previous: list[tuple] = []
    for round_ in range(12):
        batch = [(f"t/{i % 3}", b"p%d" % (i % 7), 1, 1 + (round_ * 40 + i) % 65535, False, False) for i in range(40)]
        if round_ == 5:  # the broker redelivers the last batch after a reconnect: DUP set, same ids expected
            batch = [(*m[:5], True) for m in previous]
        if round_ == 7:  # QoS 0 and 1 mixed
            batch = [(*m[:2], i % 2, m[3] if i % 2 else 0, *m[4:]) for i, m in enumerate(batch)]
        assert many.number_many(batch, "0") == [one.number(m[3], m[5], m[2], m[0], m[1]) + "0" for m in batch]
        one.write()
        many.write()
        assert (tmp_path / "many" / "mqtt-s.journal").stat().st_size <= 24 * (2 * 50 + 40)  # compacted
        previous = batch
    again = Arrivals("s", tmp_path / "many", window=50)  # after a kill -9: the broker redelivers the last batch
    redelivered = [(*m[:5], True) for m in previous]
    assert again.number_many(redelivered) == [f"{many.tag}:1:{n:x}:" for n in range(many.n - 40, many.n)]
