"""Sources change while the agent runs (OPC-UA browse -> add -> edit -> remove, the others untouched), the
metrics endpoint comes with `serve`, and the GUI over TLS marks its cookie Secure."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.certs import TestCA
from tests.edge.sources.opcua_server import node_id
from tests.web.gui_process import PASSWORD, Gui
from tests.web.peers import OpcuaPeer

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def opcua() -> Iterator[OpcuaPeer]:
    with OpcuaPeer() as peer:
        yield peer


@pytest.fixture(scope="module")
def gui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gui]:
    running = Gui(tmp_path_factory.mktemp("gui") / "config").start()
    yield running
    running.stop()


def wait_status(http: requests.Session, gui: Gui, check, seconds: float = 20) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        status = http.get(gui.url + "/api/status", timeout=10).json()
        if check(status) or time.monotonic() > deadline:
            return status
        time.sleep(0.2)


def test_browse_add_edit_remove_an_opcua_source_while_running(opcua: OpcuaPeer, gui: Gui):
    http = gui.login()
    endpoint = f"opc.tcp://127.0.0.1:{opcua.port}/test/"
    draft = {"name": "opc", "type": "opcua", "endpoint": endpoint, "publishing_interval_ms": 50, "nodes": []}
    top = http.post(gui.url + "/api/sources/browse", json={"source": draft}, params={"root": "i=85"}, timeout=30)
    assert top.status_code == 200, top.text
    line = next(n for n in top.json()["nodes"] if n["path"].endswith("Line1"))
    below = http.post(gui.url + "/api/sources/browse", json={"source": draft}, params={"root": line["id"]}, timeout=30)
    ids = {n["id"] for n in below.json()["nodes"] if n["node_class"] == "Variable"}
    assert node_id("Temperature") in ids

    added = http.post(
        gui.url + "/api/sources", json={"source": draft | {"nodes": [node_id("Temperature")]}}, timeout=30
    )
    assert added.status_code == 200, added.text
    status = wait_status(http, gui, lambda s: s["sources"].get("opc", {}).get("records_read", 0) >= 1)
    assert status["sources"]["opc"]["connected"] is True

    edited = draft | {"nodes": [node_id("Temperature"), node_id("Count")]}
    assert http.post(gui.url + "/api/sources", json={"original": "opc", "source": edited}, timeout=30).ok
    deadline, tags = time.monotonic() + 20, []
    while len(tags) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
        tags = http.get(gui.url + "/api/sources/opc/tags", timeout=10).json()["tags"]
    assert {t["tag_id"] for t in tags} == {node_id("Temperature"), node_id("Count")}  # the new instance reads both
    deadline, metrics = time.monotonic() + 10, ""
    while 'iot_connection_status{source="opc"} 1.0' not in metrics and time.monotonic() < deadline:
        time.sleep(0.2)  # the agent refreshes its gauges once a second
        metrics = requests.get(f"http://127.0.0.1:{gui.metrics_port}/metrics", timeout=10).text
    assert 'iot_connection_status{source="opc"} 1.0' in metrics

    assert http.delete(gui.url + "/api/sources/opc", timeout=30).ok
    status = http.get(gui.url + "/api/status", timeout=10).json()
    assert status["sources"] == {}
    assert status["running"] is True
    assert http.delete(gui.url + "/api/sources/opc", timeout=30).status_code == 404
    audit = (gui.config_dir / "audit.log").read_text()
    for action in ("source.add opc", "source.update opc", "source.remove opc"):
        assert action in audit


def test_unreachable_source_test_says_what_failed(gui: Gui):
    http = gui.login()
    draft = {"name": "x", "type": "modbus", "url": "modbus+tcp://127.0.0.1:1", "timeout_s": 1, "retries": 0}
    draft["registers"] = [{"name": "a", "address": 0}]
    answer = http.post(gui.url + "/api/sources/test", json={"source": draft}, timeout=30)
    assert answer.status_code == 400
    assert answer.json()["detail"][0].startswith("connection test failed:")
    bad = http.post(gui.url + "/api/sources", json={"source": draft | {"url": "tcp://plc"}}, timeout=30)
    assert bad.json()["detail"] == [
        "sources[0].url: Value error, url 'tcp://plc': scheme must be modbus+tcp:// or modbus+rtu://"
    ]


def test_tls_gui_sets_a_secure_cookie(tmp_path: Path):
    ca = TestCA(tmp_path)
    server = ca.issue("gui", server=True)
    env = {
        "IOT_CONNECTOR_GUI_TLS_CERT": str(server.cert),
        "IOT_CONNECTOR_GUI_TLS_KEY": str(server.key),
        "REQUESTS_CA_BUNDLE": str(ca.files.cert),
    }
    gui = Gui(tmp_path / "config", env=env).start()
    try:
        answer = requests.post(
            gui.url + "/api/login",
            json={"username": "admin", "password": PASSWORD},
            verify=str(ca.files.cert),
            timeout=10,
        )
        assert answer.status_code == 200
        assert "secure" in answer.headers["set-cookie"].lower()
    finally:
        gui.stop()


def test_an_invalid_config_on_disk_keeps_the_gui_up_to_fix_it(tmp_path: Path):
    gui = Gui(tmp_path / "config", state={"pipeline": {"drop_policy": "sometimes"}}).start()
    try:
        http = gui.login()
        shown = http.get(gui.url + "/api/config", timeout=10).json()
        assert "pipeline.drop_policy: Input should be 'oldest', 'newest' or 'block'" in shown["error"]
        assert http.get(gui.url + "/api/status", timeout=10).json()["running"] is False
        health = requests.get(gui.url + "/healthz", timeout=10)  # probes need no login
        assert health.status_code == 503
        assert health.json()["agent"] == "stopped"
        assert "pipeline.drop_policy" in health.json()["problem"]
        fixed = http.put(gui.url + "/api/settings", json={"pipeline": {"drop_policy": "oldest"}}, timeout=30)
        assert fixed.status_code == 200, fixed.text
        status = wait_status(http, gui, lambda s: s["running"])
        assert status["running"] is True
        assert status["config_error"] is None
        assert requests.get(gui.url + "/healthz", timeout=10).json() == {
            "gui": "ok",
            "agent": "running",
            "problem": None,
        }
    finally:
        gui.stop()
