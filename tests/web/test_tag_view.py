"""The live tag view's API (`GET /api/sources/{name}/tags`) against a real `iot-connector serve` process, a
real pymodbus server, a real mosquitto and the asyncua plant server: values equal to what the peer holds,
login required, bounded size, hostile topic names returned as data; and the bounded table itself."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from iot_connector.latest import LatestValues
from iot_connector.model import Record
from tests.edge.sources.mosquitto import Mosquitto, Publisher
from tests.edge.sources.opcua_server import VALUES, node_id
from tests.web.gui_process import Gui
from tests.web.peers import MODBUS_REGISTERS, ModbusPeer, OpcuaPeer

pytestmark = pytest.mark.integration
HOSTILE = "plant/<img src=x onerror=alert(1)>/\"'&"


@pytest.fixture(scope="module")
def gui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gui]:
    running = Gui(tmp_path_factory.mktemp("gui") / "config").start()
    yield running
    running.stop()


def wait_tags(http: requests.Session, gui: Gui, name: str, ready, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        answer = http.get(f"{gui.url}/api/sources/{name}/tags", timeout=10)
        assert answer.status_code == 200, answer.text
        view = answer.json()
        if ready(view) or time.monotonic() > deadline:
            return view
        time.sleep(0.2)


def test_the_tag_view_needs_a_login_and_names_an_unknown_source(gui: Gui):
    assert requests.get(f"{gui.url}/api/sources/x/tags", timeout=5).status_code == 401
    http = gui.login()
    missing = http.get(f"{gui.url}/api/sources/%3Cscript%3E/tags", timeout=5)
    assert missing.status_code == 404
    assert missing.json() == {"detail": ["no source named '<script>'"]}
    assert missing.headers["content-type"] == "application/json"


def test_modbus_tags_show_the_values_the_server_holds(gui: Gui):
    http = gui.login()
    with ModbusPeer() as modbus:
        source = {
            "name": "press",
            "type": "modbus",
            "url": f"modbus+tcp://127.0.0.1:{modbus.port}",
            "poll_interval_s": 0.1,
            "registers": [
                {"name": "speed", "address": 0, "data_type": "uint16"},
                {"name": "setpoint", "address": 1, "data_type": "uint16"},
            ],
        }
        assert http.post(gui.url + "/api/sources", json={"source": source}, timeout=30).ok
        view = wait_tags(http, gui, "press", lambda v: v["total"] == 2 and all(t["updates"] >= 5 for t in v["tags"]))
        values = {t["tag_path"]: t["value"] for t in view["tags"]}
        assert values == {"speed": MODBUS_REGISTERS[0], "setpoint": MODBUS_REGISTERS[1]}
        assert {t["quality"] for t in view["tags"]} == {"GOOD"}
        assert all(t["source_ts"] is None or t["source_ts"] <= t["edge_ts"] for t in view["tags"])

        # a settings change restarts the agent: the per-source counts go on, and the total is their sum
        before = http.get(gui.url + "/api/status", timeout=10).json()["sources"]["press"]["records_read"]
        assert http.put(gui.url + "/api/settings", json={"log_level": "INFO", "agent_id": "restarted"}).ok
        status = http.get(gui.url + "/api/status", timeout=10).json()
        assert status["sources"]["press"]["records_read"] >= before
        assert status["records_read"] == sum(s["records_read"] for s in status["sources"].values())
        time.sleep(1.0)
        rates = [t["updates_per_s"] for t in http.get(f"{gui.url}/api/sources/press/tags", timeout=5).json()["tags"]]
        assert all(1 < r < 20 for r in rates), rates  # polled every 0.1 s
        assert http.delete(gui.url + "/api/sources/press", timeout=30).ok


def test_mqtt_tags_are_bounded_and_hostile_topics_come_back_as_data(gui: Gui, tmp_path):
    http = gui.login()
    broker = Mosquitto(tmp_path).start()
    publisher = Publisher(broker.port)
    try:
        source = {"name": "line", "type": "mqtt", "url": broker.url, "topics": [{"topic": "plant/#", "qos": 1}]}
        assert http.post(gui.url + "/api/sources", json={"source": source}, timeout=30).ok
        time.sleep(1.0)  # subscribed
        for i in range(5):
            publisher.publish(f"plant/m{i}", json.dumps({"value": i + 0.5}))
        publisher.publish(HOSTILE, json.dumps({"value": 7}))
        view = wait_tags(http, gui, "line", lambda v: v["total"] == 6)
        assert view["total"] == 6
        values = {t["tag_id"]: t["value"] for t in view["tags"]}
        assert values[HOSTILE + "#value"] == 7  # topic # JSON path of the value
        assert values["plant/m3#value"] == 3.5
        few = http.get(f"{gui.url}/api/sources/line/tags?limit=2", timeout=5).json()
        assert len(few["tags"]) == 2
        assert few["total"] == 6
        too_many = http.get(f"{gui.url}/api/sources/line/tags?limit=100000", timeout=5)
        assert too_many.status_code == 422
    finally:
        publisher.close()
        broker.stop()
        http.delete(gui.url + "/api/sources/line", timeout=30)


def test_an_opcua_test_works_before_nodes_are_chosen_and_warns_naming_a_node_without_value(gui: Gui):
    http = gui.login()
    with OpcuaPeer() as opcua:
        line = node_id("Temperature").replace(";s=Line1.Temperature", ";s=Line1")  # an object: no value
        draft = {"name": "oven", "type": "opcua", "endpoint": f"opc.tcp://127.0.0.1:{opcua.port}/test/"}
        good = http.post(gui.url + "/api/sources/test", json={"source": draft | {"nodes": [node_id("Temperature")]}})
        assert good.json()["warning"] is False, good.text
        early = http.post(gui.url + "/api/sources/test", json={"source": draft}, timeout=30)  # before nodes are chosen
        assert early.status_code == 200, early.text
        assert early.json()["warning"] is True
        assert early.json()["message"].endswith(
            "1 read with good status (no nodes chosen yet: read the server clock i=2258)"
        )
        answer = http.post(gui.url + "/api/sources/test", json={"source": draft | {"nodes": [line]}}, timeout=30)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        assert body["warning"] is True
        assert body["message"].endswith(f"1 nodes, 0 read with good status; no good value from {line}")
    assert VALUES  # the plant server's values are what the good node reads


def test_the_table_keeps_at_most_max_tags_and_counts_the_rest():
    table = LatestValues(max_tags=2)
    records = [Record("s", "mqtt", "e", f"t{i % 3}", "Double", value_double=float(i)) for i in range(9)]
    table.observe(records)
    view = table.snapshot(limit=10)
    assert [(t["tag_id"], t["value"], t["updates"]) for t in view["tags"]] == [("t0", 6.0, 3), ("t1", 7.0, 3)]
    assert view["not_shown_updates"] == 3
    table.observe([Record("s", "mqtt", "e", "t0", "Double", value_double=float("nan"))])
    assert table.snapshot(limit=1)["tags"][0]["value"] == "nan"
