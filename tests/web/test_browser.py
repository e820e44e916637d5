"""End to end in real headless Chromium: an operator logs in, configures the agent in the browser against a
real mosquitto and a real pymodbus TCP server, watches records arrive, and is told clearly what is wrong with
a bad password, a bad PEM and a bad endpoint. Each step saves a screenshot of its tab: to the test's temporary
directory, or to docs/screenshots when SCREENSHOTS_DIR says so (`make screenshots`), so a test run leaves the
tree clean.

The tests run in file order and share one browser page (module scope), as one operator session would.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from deltalake import DeltaTable
from playwright.sync_api import Page, expect, sync_playwright

from tests.certs import self_signed_pem
from tests.edge.sources.helpers import free_port
from tests.edge.sources.mosquitto import Mosquitto, Publisher
from tests.edge.sources.opcua_server import VALUES, node_id
from tests.web.gui_process import PASSWORD, Gui
from tests.web.peers import MODBUS_REGISTERS, ModbusPeer, OpcuaPeer

pytestmark = pytest.mark.integration
SHOTS_ENV = "SCREENSHOTS_DIR"
WAIT_MS = 20_000
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def peers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Mosquitto, ModbusPeer, OpcuaPeer]]:
    broker = Mosquitto(tmp_path_factory.mktemp("broker")).start()
    with ModbusPeer() as modbus, OpcuaPeer() as opcua:
        yield broker, modbus, opcua
    broker.stop()


@pytest.fixture(scope="module")
def gui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gui]:
    running = Gui(tmp_path_factory.mktemp("gui") / "config").start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def page(gui: Gui, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Page]:
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path="/usr/bin/chromium",
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        context.set_default_timeout(WAIT_MS)
        page = context.pages[0] if context.pages else context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))  # an uncaught exception in the GUI's JS
        page.goto(gui.url + "/")
        yield page
        context.close()
        assert errors == []


def shot(page: Page, name: str) -> None:
    directory = Path(os.environ.get(SHOTS_ENV) or tempfile.gettempdir())
    if not os.environ.get(SHOTS_ENV):
        directory = directory / "iot-gui-screenshots"
    directory.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(directory / f"{name}.png"), full_page=True)


def test_wrong_password_is_refused_then_login(page: Page):
    page.fill("#login-password", "not-the-password")
    page.click("#login-button")
    expect(page.locator("#login-error")).to_have_text("wrong user name or password")
    shot(page, "login")
    page.fill("#login-password", PASSWORD)
    page.click("#login-button")
    expect(page.locator("#app-view")).to_be_visible()
    expect(page.locator("#user-name")).to_have_text("admin")


def test_zerobus_tab_rejects_a_bad_endpoint_and_reports_what_failed(page: Page, gui: Gui):
    page.click("#tabs button[data-tab=zerobus]")
    page.select_option("#sink-type", "zerobus")
    form = page.locator("#sink-form")
    form.locator('[data-path="workspace_url"]').fill(f"http://127.0.0.1:{free_port()}")
    form.locator('[data-path="zerobus_endpoint"]').fill("zerobus.example.com")
    form.locator('[data-path="client_id"]').fill("sp-app-id")
    form.locator('[data-path="client_secret"]').fill("very-secret-1")
    form.locator('[data-path="table"]').fill("main.edge.iot_records")
    page.click("#sink-save")
    expect(page.locator("#sink-message")).to_contain_text(
        "zerobus_endpoint: must be a URL starting with https:// (or http://)"
    )
    form.locator('[data-path="zerobus_endpoint"]').fill(f"https://127.0.0.1:{free_port()}")
    page.click("#sink-test")
    message = page.locator("#sink-message")
    expect(message).to_contain_text("workspace URL: cannot reach 127.0.0.1")
    expect(message).to_contain_text("ZeroBus endpoint: cannot reach 127.0.0.1")
    shot(page, "zerobus")
    assert "zerobus" not in (gui.config_dir / "connector_state.json").read_text()  # nothing invalid was stored


def test_add_an_mqtt_source_and_a_bad_pem_is_refused(page: Page, gui: Gui, peers):
    broker, _modbus, _opcua = peers
    page.click("#tabs button[data-tab=sources]")
    page.select_option("#new-source-type", "mqtt")
    page.click("#source-add")
    form = page.locator("#source-form")
    form.locator('[data-path="name"]').fill("line1-mqtt")
    form.locator('[data-path="url"]').fill(broker.url)
    tls = form.locator("#mqtt-tls")
    expect(tls).not_to_be_checked()
    expect(form.locator('[data-path="ca_file"]')).to_be_hidden()  # certificate pickers only with TLS
    tls.check()
    expect(form.locator('[data-path="url"]')).to_have_value(broker.url.replace("mqtt://", "mqtts://"))
    expect(form.locator('[data-path="ca_file"]')).to_be_visible()
    tls.uncheck()
    expect(form.locator('[data-path="url"]')).to_have_value(broker.url)
    topics = form.locator('[data-path="topics"]')
    topics.locator(".add-row").click()  # a second row, then removed again
    expect(topics.locator("tbody tr")).to_have_count(2)
    topics.locator("tbody tr").nth(1).locator(".remove-row").click()
    row = topics.locator("tbody tr").first
    row.locator('[data-col="topic"]').fill("plant/+/temperature")
    row.locator('[data-col="qos"]').select_option(label="1")
    row.locator('[data-col="format"]').select_option(label="json")
    row.locator('[data-col="value_path"]').fill("v")
    page.click("#source-test")
    expect(page.locator("#source-message")).to_contain_text("127.0.0.1")
    expect(page.locator("#source-message")).to_have_class("message ok")
    page.click("#source-save")
    expect(page.locator("#source-message")).to_have_text("saved; line1-mqtt is connected and running")
    expect(page.locator("#source-message")).to_have_class("message ok")
    expect(page.locator('#source-table tr[data-source="line1-mqtt"] .dot')).to_have_class("dot up")
    saved = json.loads((gui.config_dir / "connector_state.json").read_text())["sources"][0]["topics"]
    assert [(t["topic"], t["qos"], t["value_path"]) for t in saved] == [("plant/+/temperature", 1, "v")]

    page.select_option("#cert-kind", "ca")
    page.set_input_files("#cert-file", files=[{"name": "ca.pem", "mimeType": "text/plain", "buffer": b"not a cert"}])
    page.click("#cert-upload")
    expect(page.locator("#cert-message")).to_have_text(
        "not a PEM certificate: expected a '-----BEGIN CERTIFICATE-----' block"
    )
    assert not (gui.config_dir / "certs" / "ca.pem").exists()

    pem = self_signed_pem("broker-ca")[0]
    page.set_input_files("#cert-file", files=[{"name": "broker-ca.pem", "mimeType": "text/plain", "buffer": pem}])
    page.click("#cert-upload")
    expect(page.locator("#cert-message")).to_contain_text("stored broker-ca.pem")
    listed = page.locator('#cert-list li[data-cert="broker-ca.pem"]')
    expect(listed.locator("a")).to_have_attribute("href", "/api/certs/broker-ca.pem")
    dialogs: list[str] = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.click("#cert-upload")  # the same name again: asks before overwriting, and dismissed: nothing sent
    assert dialogs == [
        "broker-ca.pem exists; sources using it will use the new file after their next connect. Overwrite?"
    ]
    page.locator('#source-table tr[data-source="line1-mqtt"] .edit').click()
    form.locator("#mqtt-tls").check()
    ca_file = form.locator('[data-path="ca_file"]')
    ca_file.select_option(label="broker-ca.pem")  # picked from the uploaded files
    expect(ca_file).to_have_value(str((gui.config_dir / "certs" / "broker-ca.pem").resolve()))
    shot(page, "sources")
    page.click("#source-cancel")


def test_add_a_modbus_source(page: Page, peers):
    _broker, modbus, _opcua = peers
    page.select_option("#new-source-type", "modbus")
    page.click("#source-add")
    form = page.locator("#source-form")
    form.locator('[data-path="name"]').fill("press-modbus")
    form.locator('[data-path="url"]').fill(f"modbus+tcp://127.0.0.1:{modbus.port}")
    form.locator('[data-path="poll_interval_s"]').fill("0.2")
    registers = form.locator('[data-path="registers"]')
    registers.locator(".add-row").click()
    for row, (name, address) in zip(
        registers.locator("tbody tr").all(), [("speed", "0"), ("setpoint", "1")], strict=True
    ):
        row.locator('[data-col="name"]').fill(name)
        row.locator('[data-col="table"]').select_option(label="holding")
        row.locator('[data-col="address"]').fill(address)
        row.locator('[data-col="data_type"]').select_option(label="uint16")
    page.click("#source-test")
    expect(page.locator("#source-message")).to_contain_text("read 2 tags")
    shot(page, "sources-modbus")
    page.click("#source-save")
    expect(page.locator("#source-message")).to_have_text("saved; press-modbus is connected and running")


def test_an_unreachable_source_is_not_called_running(page: Page):
    page.select_option("#new-source-type", "modbus")
    page.click("#source-add")
    form = page.locator("#source-form")
    form.locator('[data-path="name"]').fill("nowhere")
    form.locator('[data-path="url"]').fill(f"modbus+tcp://127.0.0.1:{free_port()}")
    page.click("#source-save")
    message = page.locator("#source-message")
    expect(message).to_contain_text("saved, but nowhere cannot connect: ")
    expect(message).to_have_class("message error")
    expect(page.locator('#source-table tr[data-source="nowhere"] .state')).to_have_text("failed")
    expect(page.locator("#agent-state")).to_have_text(re.compile(r"agent running, 1 of \d sources not connected"))
    expect(page.locator("#agent-state")).to_have_class("warn")
    shot(page, "sources-unreachable")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator('#source-table tr[data-source="nowhere"] .remove').click()
    expect(page.locator('#source-table tr[data-source="nowhere"]')).to_have_count(0)
    expect(page.locator("#agent-state")).to_have_text("agent running")


def test_add_an_opcua_source_by_browsing_its_nodes(page: Page, peers):
    _broker, _modbus, opcua = peers
    page.select_option("#new-source-type", "opcua")
    page.click("#source-add")
    form = page.locator("#source-form")
    form.locator('[data-path="name"]').fill("oven-opcua")
    form.locator('[data-path="endpoint"]').fill(f"opc.tcp://127.0.0.1:{opcua.port}/test/")
    form.locator('[data-path="publishing_interval_ms"]').fill("50")
    page.click("#source-browse")
    page.locator("#browse-result button", has_text=re.compile(r"^Object: .*Line1 \(")).click()
    variable = page.locator("#browse-result button", has_text=re.compile(r"^Variable: .*Temperature \("))
    variable.click()
    variable.click()  # twice: still one row
    expect(page.locator("#browse-result .crumb")).to_have_text(["Objects", "Line1"])
    ids = form.locator('[data-path="nodes"] [data-col="id"]')
    expect(ids).to_have_count(1)
    expect(ids).to_have_value(node_id("Temperature"))
    form.locator('[data-path="cert_file"]').select_option(label="other path (type it)...")  # a path to generate
    typed = form.locator('input[data-path="cert_file"]')
    typed.fill("pki/oven-client.der")
    expect(typed).to_be_focused()
    typed.fill("")  # no security policy here: no client certificate
    shot(page, "sources-opcua")
    page.click("#source-save")
    expect(page.locator("#source-message")).to_have_text("saved; oven-opcua is connected and running")


def test_records_flow_on_the_monitoring_tab(page: Page, gui: Gui, peers):
    broker, _modbus, _opcua = peers
    page.click("#tabs button[data-tab=monitoring]")
    publisher = Publisher(broker.port)
    try:
        mqtt_row = page.locator('#monitor-table tr[data-source="line1-mqtt"]')
        expect(mqtt_row.locator(".dot")).to_have_class("dot up")
        for name in ("press-modbus", "oven-opcua"):
            expect(page.locator(f'#monitor-table tr[data-source="{name}"] .dot')).to_have_class("dot up")
        deadline = time.monotonic() + 20
        sent = 0
        while time.monotonic() < deadline and int(mqtt_row.locator(".read").inner_text() or 0) < 20:
            for i in range(10):
                publisher.publish(f"plant/oven{i % 2}/temperature", json.dumps({"v": 20.5 + sent}))
                sent += 1
            time.sleep(0.3)
        assert int(mqtt_row.locator(".read").inner_text()) >= 20
        expect(page.locator("#stat-written")).not_to_have_text("0")
        publisher.publish("plant/oven0/temperature", b'{"v": 1, "ts": 1e308')  # not JSON: rejected alone
        expect(mqtt_row.locator(".rejected")).to_have_text("1")
        expect(page.locator("#stat-failed")).to_have_text("1")
        expect(page.locator("#stat-sink")).to_contain_text(" up, breaker closed")
        page.wait_for_timeout(2500)  # a few polls so the throughput graph has a line
        expect(mqtt_row.locator(".rate")).not_to_have_text("-")
        shot(page, "monitoring")

        # the live tag view: each value equal to what the peer published / holds
        page.click("#tabs button[data-tab=sources]")
        page.locator('#source-table tr[data-source="line1-mqtt"] .tags').click()
        expect(page.locator("#tab-monitoring")).to_be_visible()
        expect(page.locator("#tag-source")).to_have_value("line1-mqtt")
        publisher.publish("plant/oven0/temperature", json.dumps({"v": 99.25}))
        publisher.publish("plant/oven1/temperature", json.dumps({"v": -3.5}))
        hostile = "<img src=x onerror=window.__xss=1>"
        publisher.publish(f"plant/{hostile}/temperature", json.dumps({"v": 5}))
        tags = page.locator("#tag-table tbody")
        expect(tags.locator('tr[data-tag="plant/oven0/temperature#v"] .value')).to_have_text("99.25")
        expect(tags.locator('tr[data-tag="plant/oven1/temperature#v"] .value')).to_have_text("-3.5")
        expect(tags.locator('tr[data-tag="plant/oven0/temperature#v"] .quality')).to_have_text("GOOD")
        expect(tags.locator("td.tag", has_text=hostile)).to_have_count(1)  # shown as text
        assert page.evaluate("window.__xss") is None
        assert page.locator("#tag-table img").count() == 0
        page.select_option("#tag-source", "press-modbus")
        for name, value in (("speed", MODBUS_REGISTERS[0]), ("setpoint", MODBUS_REGISTERS[1])):
            row = tags.locator("tr", has=page.locator("td.tag", has_text=re.compile(f"^{name}$")))
            expect(row.locator(".value")).to_have_text(str(value))
        expect(tags.locator("tr").first.locator(".rate")).not_to_have_text("0.0")  # polled every 0.2 s
        page.select_option("#tag-source", "oven-opcua")
        expect(tags.locator(f'tr[data-tag="{node_id("Temperature")}"] .value')).to_have_text(
            str(VALUES["Temperature"][0])
        )
        page.select_option("#tag-source", "line1-mqtt")
        page.wait_for_timeout(1500)
        shot(page, "tags")
    finally:
        publisher.close()
    table = DeltaTable(str(gui.config_dir / "data" / "iot_records")).to_pyarrow_table().to_pylist()
    mqtt_values = {r["value_double"] for r in table if r["source_id"].startswith("line1-mqtt")}
    assert {20.5, 21.5} <= mqtt_values
    modbus = {r["tag_path"]: r["value_long"] for r in table if r["protocol"] == "modbus"}
    assert modbus == {"speed": MODBUS_REGISTERS[0], "setpoint": MODBUS_REGISTERS[1]}
    opc = {r["value_double"] for r in table if r["protocol"] == "opcua"}
    assert opc == {VALUES["Temperature"][0]}


def test_find_a_log_line(page: Page):
    page.click("#tabs button[data-tab=logs]")
    page.fill("#log-search", "source")
    expect(page.locator("#log-lines")).to_contain_text("source press-modbus (modbus) started")
    expect(page.locator("#log-lines")).to_contain_text("source oven-opcua (opcua) started")
    shot(page, "logs")


def test_change_a_setting(page: Page, gui: Gui):
    page.click("#tabs button[data-tab=settings]")
    page.locator('#settings-form [data-path="pipeline.batch_max_records"]').fill("777")
    page.click("#settings-save")
    expect(page.locator("#settings-message")).to_have_text("applied: pipeline.batch_max_records")
    state = json.loads((gui.config_dir / "connector_state.json").read_text())
    assert state["pipeline"]["batch_max_records"] == 777
    page.locator('#settings-form [data-path="tracing.exporter"]').select_option(label="console")
    page.click("#settings-save")
    expect(page.locator("#settings-message")).to_have_text("applied: tracing.exporter")
    expect(page.locator("#audit-table")).to_contain_text("settings.update")
    page.locator('#settings-form [data-path="pipeline.batch_max_records"]').fill("0")
    page.click("#settings-save")
    expect(page.locator("#settings-message")).to_contain_text(
        "pipeline.batch_max_records: Input should be greater than or equal to 1"
    )
    shot(page, "settings")


def test_security_and_proxy_settings_persist_and_plaintext_secrets_are_refused(page: Page, gui: Gui):
    page.reload()  # a fresh form: the previous test left a refused value in it
    page.click("#tabs button[data-tab=settings]")
    form = page.locator("#settings-form")
    expect(form.locator("legend", has_text="Security")).to_be_visible()
    expect(form.locator("legend", has_text="Proxy")).to_be_visible()
    renew = '[data-path="security.certificate_auto_rotation.renew_days_before_expiry"]'
    form.locator(renew).fill("14")
    form.locator('[data-path="proxy.https_proxy"]').fill("http://proxy.dmz:3128")
    form.locator('[data-path="proxy.no_proxy"]').fill("localhost,127.0.0.1")
    page.click("#settings-save")
    message = page.locator("#settings-message")
    expect(message).to_have_text(
        "applied: proxy.https_proxy, proxy.no_proxy, security.certificate_auto_rotation.renew_days_before_expiry"
    )

    page.reload()
    page.click("#tabs button[data-tab=settings]")
    expect(form.locator(renew)).to_have_value("14")
    expect(form.locator('[data-path="proxy.https_proxy"]')).to_have_value("http://proxy.dmz:3128")
    expect(form.locator('[data-path="proxy.no_proxy"]')).to_have_value("localhost,127.0.0.1")
    state = json.loads((gui.config_dir / "connector_state.json").read_text())
    assert state["proxy"] == {"https_proxy": "http://proxy.dmz:3128", "no_proxy": "localhost,127.0.0.1"}
    assert state["security"]["certificate_auto_rotation"]["renew_days_before_expiry"] == 14

    form.locator('[data-path="security.secrets_encryption.enabled"]').uncheck()
    page.click("#settings-save")
    expect(message).to_contain_text("security.secrets_encryption:")
    expect(message).to_contain_text("also set allow_plaintext: true to confirm")
    form.locator('[data-path="security.secrets_encryption.enabled"]').check()
    form.locator('[data-path="proxy.http_proxy"]').fill("proxy.dmz:3128")
    page.click("#settings-save")
    expect(message).to_contain_text("proxy.http_proxy: must be a URL starting with https:// (or http://)")
    state = json.loads((gui.config_dir / "connector_state.json").read_text())
    assert state["security"]["secrets_encryption"] == {"enabled": True, "allow_plaintext": False}
    assert "http_proxy" not in state["proxy"]
