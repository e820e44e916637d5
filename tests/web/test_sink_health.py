"""What the monitoring tab's API shows when input is hostile and the sink hangs: `iot-connector serve` with a
real mosquitto and the ZeroBus gRPC double frozen (it keeps the stream open and stops acknowledging)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import requests

from tests.edge.sources.mosquitto import Mosquitto, Publisher
from tests.edge.test_zerobus import TABLE
from tests.edge.zerobus_double import ZerobusDouble
from tests.web.gui_process import Gui

pytestmark = pytest.mark.integration


def wait(http: requests.Session, gui: Gui, check, what: str, seconds: float = 30) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        status = http.get(gui.url + "/api/status", timeout=10).json()
        if check(status):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}: {json.dumps(status)[:2000]}")
        time.sleep(0.2)


def test_rejections_and_a_hung_sink_show_on_the_status_api_and_metrics(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path).start()
    zerobus = ZerobusDouble().start()
    state = {
        "pipeline": {"batch_max_wait_ms": 20, "sink_ack_timeout_s": 1, "spool": {"durability": "write"}},
        "sink": {
            "type": "zerobus",
            "workspace_url": zerobus.workspace_url,
            "zerobus_endpoint": zerobus.endpoint,
            "client_id": zerobus.client_id,
            "client_secret": zerobus.client_secret,
            "table": TABLE,
        },
        "sources": [
            {"name": "line1", "type": "mqtt", "url": broker.url, "topics": [{"topic": "plant/#", "value_path": "v"}]}
        ],
    }
    gui = Gui(tmp_path / "config", state, env={"NO_PROXY": "127.0.0.1,localhost"}).start()
    publisher = Publisher(broker.port)
    try:
        http = gui.login()
        wait(http, gui, lambda s: s["sources"]["line1"]["connected"], "the MQTT source")
        time.sleep(0.3)  # SUBACK
        publisher.publish("plant/t", b'{"v": 1}')
        publisher.publish("plant/t", b'{"v": 1, "ts": 1e308')  # not JSON
        publisher.publish("plant/t", b'{"x": 2}')  # no value
        status = wait(http, gui, lambda s: s["sink"]["up"] and s["records_written"] >= 1, "the first write")
        status = wait(http, gui, lambda s: s["sources"]["line1"]["rejected"] == 2, "the rejections")
        assert status["records_failed_by_type"] == {"malformed_payload": 2}
        assert status["sources"]["line1"]["connected"] is True

        zerobus.withhold_acks = True  # hung: the stream stays open, nothing is acknowledged
        publisher.publish("plant/t", b'{"v": 2}')
        status = wait(http, gui, lambda s: not s["sink"]["up"], "sink down while acknowledgements stop")
        assert "no acknowledgement from the sink" in status["sink"]["last_error"]
        metrics = requests.get(f"http://127.0.0.1:{gui.metrics_port}/metrics", timeout=10).text
        assert "iot_sink_up 0.0" in metrics
        assert 'iot_records_failed_total{error_type="malformed_payload",source="line1"} 2.0' in metrics

        zerobus.withhold_acks = False  # the service answers again: the next acknowledgement covers the rest
        publisher.publish("plant/t", b'{"v": 3}')
        wait(http, gui, lambda s: s["sink"]["up"] and s["queue_depth"] == 0, "sink up again")
    finally:
        publisher.close()
        gui.stop()
        zerobus.stop()
        broker.stop()
    values = sorted({r["value_long"] for r in zerobus.rows(TABLE) if "value_long" in r}, key=int)
    assert [int(v) for v in values] == [1, 2, 3]
