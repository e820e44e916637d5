"""The agent as a user runs it: `iot-connector run` in a subprocess, metrics, SIGTERM, kill -9 under load."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from deltalake import DeltaTable

from iot_connector.agent import Agent
from iot_connector.config import load_config
from tests.edge.counter_source import CounterConfig

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]


def _write_state(config_dir: Path, **source) -> None:
    state = {
        "agent_id": "edge-test",
        "plugins": ["tests.edge.counter_source"],
        "metrics": {"port": 0},
        "pipeline": {"batch_max_records": 500, "batch_max_wait_ms": 20, "drain_timeout_s": 1},
        "sources": [{"name": "c1", "type": "counter", **source}],
    }
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "connector_state.json").write_text(json.dumps(state))


def _start(config_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'src'}"}
    return subprocess.Popen(
        [sys.executable, "-m", "iot_connector.cli", "run", "--config-dir", str(config_dir)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _last_accepted(progress: Path) -> int:
    lines = progress.read_text().splitlines() if progress.exists() else []
    complete = [line for line in lines if line.strip().isdigit()]
    return int(complete[-1]) if complete else -1


def _table(config_dir: Path) -> list[dict]:
    path = config_dir / "data" / "iot_records"
    if not DeltaTable.is_deltatable(str(path)):
        return []
    return DeltaTable(str(path)).to_pyarrow_table(columns=["seq", "record_id", "is_replayed"]).to_pylist()


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


@pytest.mark.slow
def test_kill_9_under_load_loses_nothing_accepted(tmp_path: Path) -> None:
    config_dir, progress = tmp_path / "cfg", tmp_path / "progress.txt"
    _write_state(config_dir, batch=100, progress_file=str(progress))
    agent = _start(config_dir)
    try:
        _wait(lambda: _last_accepted(progress) >= 20_000, 60, "20,000 accepted records")
    finally:
        agent.send_signal(signal.SIGKILL)
        agent.communicate(timeout=10)
    accepted = _last_accepted(progress)
    assert agent.returncode == -signal.SIGKILL

    _write_state(config_dir, enabled=False)  # restart with no input: only the spool replay arrives
    agent = _start(config_dir)
    try:
        _wait(lambda: len({r["seq"] for r in _table(config_dir)}) > accepted, 60, "the spool replay")
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err
    rows = _table(config_dir)
    seqs = {r["seq"] for r in rows}
    assert set(range(accepted + 1)) <= seqs  # everything accepted before the kill is in the table
    by_seq: dict[int, set[str]] = {}
    for row in rows:
        by_seq.setdefault(row["seq"], set()).add(row["record_id"])
    assert all(len(ids) == 1 for ids in by_seq.values())  # duplicates carry the same record_id
    assert any(r["is_replayed"] for r in rows)


def test_sigterm_stops_cleanly_with_json_logs(tmp_path: Path) -> None:
    config_dir = tmp_path / "cfg"
    _write_state(config_dir, limit=2000)
    agent = _start(config_dir)
    try:
        _wait(lambda: len(_table(config_dir)) == 2000, 60, "2,000 rows")
    finally:
        agent.send_signal(signal.SIGTERM)
        _, err = agent.communicate(timeout=30)
    assert agent.returncode == 0, err
    logs = [json.loads(line) for line in err.splitlines() if line.strip()]
    messages = [entry["msg"] for entry in logs]
    assert any(m.startswith("agent edge-test started") for m in messages)
    assert any(m.startswith("stopped;") for m in messages)
    assert sorted(r["seq"] for r in _table(config_dir)) == list(range(2000))


def test_malformed_config_exits_with_clear_message(tmp_path: Path) -> None:
    (tmp_path / "connector_state.json").write_text('{"pipeline": {"batch_max_records": -1}, "sources": 5}')
    agent = _start(tmp_path)
    _, err = agent.communicate(timeout=30)
    assert agent.returncode == 2
    assert "Traceback" not in err
    assert "pipeline.batch_max_records" in err
    assert "sources: must be a list" in err


async def test_metrics_endpoint_has_the_guide_names(tmp_path: Path) -> None:
    _write_state(tmp_path, limit=300)
    agent = Agent(load_config(tmp_path), tmp_path)
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    async with asyncio.timeout(30):
        while agent.metrics_port is None or agent.metrics.records_written.labels(protocol="counter")._value.get() < 300:
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.1)  # one status-loop tick
    status = agent.status()
    assert status["sources"]["c1"]["records_read"] == 300
    tags = agent.latest["c1"].snapshot(limit=10)["tags"]  # the GUI's live values: each tag's last record
    assert [(t["tag_id"], t["updates"]) for t in tags] == [(f"tag{i}", 75) for i in range(4)]
    assert (status["queue_depth"], status["sink"]["breaker"], status["sink"]["type"]) == (0, "closed", "delta")
    text = await asyncio.to_thread(
        lambda: requests.get(f"http://127.0.0.1:{agent.metrics_port}/metrics", timeout=5).text
    )
    stop.set()
    await running
    for line in (
        'iot_records_read_total{source="c1"} 300.0',
        'iot_records_written_total{protocol="counter"} 300.0',
        "iot_queue_depth 0.0",
        "iot_batch_latency_seconds_count",
        'iot_connection_status{source="c1"}',
        "iot_spool_bytes",
        'iot_source_reconnects_total{source="c1"} 0.0',
        'iot_source_connect_attempts_total{source="c1"} 1.0',
    ):
        assert line in text


async def test_sources_are_added_and_removed_while_the_others_flow(tmp_path: Path) -> None:
    _write_state(tmp_path, interval_s=0.01, batch=10)
    agent = Agent(load_config(tmp_path), tmp_path)
    cfg = agent.config.sources[0].model_copy(update={"name": "c2"})
    with pytest.raises(RuntimeError, match="not running"):
        agent.add_source(cfg)
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    written = agent.metrics.records_written.labels(protocol="counter")
    try:
        async with asyncio.timeout(30):
            await agent.started.wait()
            added = agent.add_source(cfg)
            with pytest.raises(ValueError, match="c2 is already running"):
                agent.add_source(cfg)
            while added.health.records_read < 100:
                await asyncio.sleep(0.02)
            await asyncio.sleep(1.1)  # one status-loop tick: c2 has its metrics
            assert await agent.remove_source("c2")
            assert not await agent.remove_source("c2")
            assert [s.config.name for s in agent.sources] == ["c1"]
            assert "c2" not in agent.status()["sources"]  # type: ignore[operator]
            read = added.health.records_read
            before = written._value.get()
            while written._value.get() < before + 200:  # c1 kept flowing
                await asyncio.sleep(0.02)
            assert added.health.records_read == read  # c2 is stopped
    finally:
        stop.set()
        await running
    m = agent.metrics
    for family in (m.connection_status, m.source_reconnects, m.source_attempts):  # its connection series went too
        assert {s.labels["source"] for f in family.collect() for s in f.samples} == {"c1"}


async def test_busy_metrics_port_does_not_stop_the_data(tmp_path: Path, caplog) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        _write_state(tmp_path, limit=100)
        config = load_config(tmp_path)
        config = config.model_copy(
            update={"metrics": config.metrics.model_copy(update={"host": "127.0.0.1", "port": busy.getsockname()[1]})}
        )
        agent = Agent(config, tmp_path)
        stop = asyncio.Event()
        running = asyncio.create_task(agent.run(stop))
        async with asyncio.timeout(30):
            while agent.metrics.records_written.labels(protocol="counter")._value.get() < 100:
                await asyncio.sleep(0.05)
        stop.set()
        await running
    assert agent.metrics_port is None
    assert "set metrics.port to a free port" in caplog.text


async def test_a_source_that_cannot_be_created_is_reported_and_the_others_run(tmp_path: Path) -> None:
    _write_state(tmp_path, limit=10)
    state = json.loads((tmp_path / "connector_state.json").read_text())
    state["sources"].append({"name": "bad", "type": "counter", "refuse": "serial port /dev/ttyX absent"})
    (tmp_path / "connector_state.json").write_text(json.dumps(state))
    agent = Agent(load_config(tmp_path), tmp_path)
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    async with asyncio.timeout(30):
        while agent.metrics.records_written.labels(protocol="counter")._value.get() < 10:
            await asyncio.sleep(0.05)
    sources = agent.status()["sources"]
    assert sources["bad"] == {
        "connected": False,
        "last_error": "cannot be created: ValueError: serial port /dev/ttyX absent",
    }
    assert sources["c1"]["records_read"] == 10
    assert "bad" not in agent.latest  # no live values for a source that does not run
    with pytest.raises(ValueError, match="absent"):
        agent.add_source(CounterConfig(name="bad2", refuse="absent"))
    assert agent.status()["sources"]["bad2"]["last_error"] == "cannot be created: ValueError: absent"
    assert await agent.remove_source("bad2")
    assert "bad2" not in agent.status()["sources"]
    stop.set()
    await running
