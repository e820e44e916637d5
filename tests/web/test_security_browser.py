"""The security refusals as an operator meets them in headless Chromium: a stored secret that must be typed
again for a new address, a weak new password, the login throttle."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from playwright.sync_api import Page, expect, sync_playwright

from tests.edge.sources.helpers import free_port
from tests.web.gui_process import PASSWORD, Gui
from tests.web.test_browser import CHROMIUM_ARGS

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def gui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gui]:
    # a long first wait, so the lock-out certainly lasts while the browsers try (a loaded CI machine is slow)
    running = Gui(tmp_path_factory.mktemp("gui") / "config", env={"IOT_CONNECTOR_GUI_LOGIN_DELAY_S": "60"}).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def page(gui: Gui) -> Iterator[Page]:
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(20_000)
        page.goto(gui.url + "/")
        page.fill("#login-password", PASSWORD)
        page.click("#login-button")
        expect(page.locator("#app-view")).to_be_visible()
        yield page
        browser.close()


def test_a_stored_secret_must_be_typed_again_for_a_new_address(page: Page):
    page.click("#tabs button[data-tab=zerobus]")
    page.select_option("#sink-type", "zerobus")
    form = page.locator("#sink-form")
    form.locator('[data-path="workspace_url"]').fill(f"https://127.0.0.1:{free_port()}")
    form.locator('[data-path="zerobus_endpoint"]').fill(f"https://127.0.0.1:{free_port()}")
    form.locator('[data-path="client_id"]').fill("sp-app-id")
    form.locator('[data-path="client_secret"]').fill("very-secret-value-1")
    form.locator('[data-path="table"]').fill("main.edge.iot_records")
    page.click("#sink-save")
    expect(page.locator("#sink-message")).to_have_text("saved and applied")
    secret = form.locator('[data-path="client_secret"]')
    expect(secret).to_have_attribute("placeholder", "stored (leave empty to keep; type it again for a new address)")
    form.locator('[data-path="workspace_url"]').fill(f"http://127.0.0.1:{free_port()}")
    page.click("#sink-test")
    expect(page.locator("#sink-message")).to_have_text(
        "sink.client_secret: workspace_url changed, so the stored client_secret is not sent there; "
        "enter the client_secret again"
    )
    expect(page.locator("#sink-message")).to_have_class("message error")


def test_a_weak_new_password_is_refused_with_the_rule(page: Page):
    page.click("#tabs button[data-tab=settings]")
    page.fill("#pw-current", PASSWORD)
    page.fill("#pw-new", "12345678")
    page.click("#pw-save")
    expect(page.locator("#pw-message")).to_have_text(
        "the password needs at least 12 characters (a few unrelated words make a good one)"
    )


def test_metrics_basic_auth_switched_on_in_settings(page: Page, gui: Gui):
    url = f"http://127.0.0.1:{gui.metrics_port}/metrics"
    assert requests.get(url, timeout=10).status_code == 200
    page.click("#tabs button[data-tab=settings]")
    page.check('#settings-form .section-toggle[data-section="metrics.basic_auth"]')
    page.fill('#settings-form [data-path="metrics.basic_auth.username"]', "prometheus")
    page.fill('#settings-form [data-path="metrics.basic_auth.password"]', "scrape-secret-123")
    page.click("#settings-save")
    expect(page.locator("#settings-message")).to_have_text("applied: metrics.basic_auth")
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, auth=("prometheus", "scrape-secret-123"), timeout=10).status_code == 200
    stored = page.locator('#settings-form [data-path="metrics.basic_auth.password"]')
    expect(stored).to_have_value("")  # write-only: the form shows the placeholder, never the value
    assert "scrape-secret-123" not in (gui.config_dir / "connector_state.json").read_text()


def test_the_login_page_names_the_wait_and_the_operators_browser_still_gets_in(page: Page, gui: Gui):
    for attempt in range(6):  # someone else guessing from the same address, without a device cookie
        requests.post(gui.url + "/api/login", json={"username": "admin", "password": f"guess-{attempt}"}, timeout=30)
    assert page.context.browser is not None
    stranger = page.context.browser.new_context()  # another browser on the same address: no device cookie
    other = stranger.new_page()
    other.goto(gui.url + "/")
    other.fill("#login-password", PASSWORD)
    other.click("#login-button")
    expect(other.locator("#login-error")).to_contain_text("too many failed attempts; try again in")
    stranger.close()
    # the operator's browser logged in before: its device cookie has its own count
    page.click("#logout")
    expect(page.locator("#login-view")).to_be_visible()
    page.fill("#login-password", PASSWORD)
    page.click("#login-button")
    expect(page.locator("#app-view")).to_be_visible()
    refused = requests.post(gui.url + "/api/login", json={"username": "admin", "password": PASSWORD}, timeout=30)
    assert refused.status_code == 429  # while everyone else still waits
    assert int(refused.headers["Retry-After"]) > 30
