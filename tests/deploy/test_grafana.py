"""deploy/grafana/iot-connector.json is a valid dashboard and queries only metrics the agent really exports:
the names are taken from a scrape of a running `iot-connector run`, not from a list in this test."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
DASHBOARD = REPO / "deploy" / "grafana" / "iot-connector.json"
METRIC = re.compile(r"\b(iot_[a-z_]+)\b")
BY = re.compile(r"\bby \(([^)]*)\)")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}


def _queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict[str, set[str]]:
    """Sample name -> label names, from /metrics of an agent that moved records (so labelled series exist).
    A family with no sample yet (failures, drops on a healthy agent) still counts by its declared type."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path_factory.mktemp("grafana-agent")
    (config / "connector_state.json").write_text(
        json.dumps(
            {
                "plugins": ["tests.edge.counter_source"],
                "metrics": {"host": "127.0.0.1"},
                "pipeline": {"batch_max_records": 100, "batch_max_wait_ms": 20, "spool": {"enabled": False}},
                "sources": [{"name": "c1", "type": "counter", "batch": 10, "interval_s": 0.02}],
            }
        )
    )
    agent = subprocess.Popen(
        [sys.executable, "-m", "iot_connector.cli", "run", "--config-dir", str(config), "--metrics-port", str(port)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": f"{REPO}:{REPO / 'src'}"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, text = time.monotonic() + 30, ""
        while "iot_records_written_total{" not in text:
            assert time.monotonic() < deadline, "the agent wrote nothing within 30 s"
            assert agent.poll() is None, agent.communicate()[1]
            time.sleep(0.2)
            try:
                text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except requests.ConnectionError:
                continue
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.communicate(timeout=30)
    names: dict[str, set[str]] = {}
    for family in text_string_to_metric_families(text):
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.setdefault(family.name + suffix, set())
        for sample in family.samples:
            names.setdefault(sample.name, set()).update(sample.labels)
    return names


def test_the_dashboard_is_valid_grafana_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "iot-connector"
    assert dashboard["templating"]["list"][0]["type"] == "datasource"
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["targets"], panel["title"]
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys()
        assert panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_every_queried_metric_and_label_is_exported_by_the_agent(exported) -> None:
    for expr in _queries():
        for name in METRIC.findall(expr):
            assert name in exported, f"{name} (in {expr!r}) is not exported; exported: {sorted(exported)}"
            for labels in BY.findall(expr):
                for label in (item.strip() for item in labels.split(",")):
                    if label != "le" and exported[name]:
                        assert label in exported[name], f"{name} has no label {label!r}"


def test_the_dashboard_covers_what_operators_ask_for() -> None:
    used = {name for expr in _queries() for name in METRIC.findall(expr)}
    assert used >= {
        "iot_records_read_total",
        "iot_records_written_total",
        "iot_records_failed_total",
        "iot_records_dropped_total",
        "iot_queue_depth",
        "iot_spool_bytes",
        "iot_connection_status",
        "iot_batch_latency_seconds_bucket",
    }
    latency = " ".join(expr for expr in _queries() if "iot_batch_latency_seconds_bucket" in expr)
    assert "histogram_quantile(0.5," in latency
    assert "histogram_quantile(0.99," in latency
