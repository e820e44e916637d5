"""The GUI's HTTP API against a real `iot-connector serve` process: login, CSRF, rate limit, secrets that
never come back, uploads confined to the certs directory, PEM validation, config persisted encrypted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.certs import self_signed_pem
from tests.web.gui_process import PASSWORD, Gui


@pytest.fixture(scope="module")
def gui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gui]:
    running = Gui(tmp_path_factory.mktemp("gui") / "config").start()
    yield running
    running.stop()


def test_every_api_route_needs_a_login(gui: Gui):
    for path in ("/api/config", "/api/status", "/api/logs", "/api/schemas", "/api/audit", "/api/certs"):
        answer = requests.get(gui.url + path, timeout=5)
        assert answer.status_code == 401, path
        assert answer.json() == {"detail": ["log in first"]}
    assert requests.get(gui.url + "/", timeout=5).status_code == 200  # the login page itself


def test_wrong_password_is_refused_and_the_password_file_holds_no_plaintext(gui: Gui):
    answer = requests.post(gui.url + "/api/login", json={"username": "admin", "password": "nope"}, timeout=10)
    assert answer.status_code == 401
    assert answer.json()["detail"] == ["wrong user name or password"]
    stored = (gui.config_dir / "gui_users.json").read_text()
    assert PASSWORD not in stored
    assert json.loads(stored)["admin"]["kdf"] == "scrypt"
    assert (gui.config_dir / "gui_users.json").stat().st_mode & 0o077 == 0


def test_session_cookie_flags_and_csrf_required_on_changes(gui: Gui):
    answer = requests.post(gui.url + "/api/login", json={"username": "admin", "password": PASSWORD}, timeout=10)
    cookie = answer.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=strict" in cookie
    http = gui.login()
    token = http.headers.pop("X-CSRF-Token")
    refused = http.put(gui.url + "/api/settings", json={"log_level": "DEBUG"}, timeout=10)
    assert refused.status_code == 403
    assert "CSRF" in refused.json()["detail"][0]
    wrong = http.put(gui.url + "/api/settings", json={"log_level": "DEBUG"}, headers={"X-CSRF-Token": "x"}, timeout=10)
    assert wrong.status_code == 403
    ok = http.put(gui.url + "/api/settings", json={"log_level": "INFO"}, headers={"X-CSRF-Token": token}, timeout=30)
    assert ok.status_code == 200, ok.text


def test_zerobus_secret_is_write_only_and_encrypted_at_rest(gui: Gui):
    http = gui.login()
    sink = {
        "type": "zerobus",
        "workspace_url": "https://127.0.0.1:1",
        "zerobus_endpoint": "https://127.0.0.1:1",
        "client_id": "sp-1",
        "client_secret": "s3cr3t-value-123",
        "table": "main.edge.iot",
    }
    assert http.put(gui.url + "/api/sink", json=sink, timeout=30).status_code == 200
    shown = http.get(gui.url + "/api/config", timeout=10).json()["config"]["sink"]
    assert shown["client_secret"] == "********"
    assert shown["client_id"] == "sp-1"
    state = (gui.config_dir / "connector_state.json").read_text()
    assert "s3cr3t-value-123" not in state
    assert '"client_secret": "enc:' in state
    # sent back masked (unchanged) with another edit: the stored secret is kept
    kept = http.put(gui.url + "/api/sink", json=shown | {"client_id": "sp-2"}, timeout=30)
    assert kept.status_code == 200
    from iot_connector.config import load_config

    assert load_config(gui.config_dir).sink.client_secret.get_secret_value() == "s3cr3t-value-123"
    audit = (gui.config_dir / "audit.log").read_text()
    assert "s3cr3t-value-123" not in audit
    assert "<secret changed>" in audit
    assert '"user": "admin"' in audit
    # test connection says what failed; a bad endpoint is refused with a clear message
    test = http.post(gui.url + "/api/sink/test", json=shown, timeout=30)
    assert test.status_code == 400
    assert any("ZeroBus endpoint: cannot reach 127.0.0.1:1" in p for p in test.json()["detail"])
    retyped = {"zerobus_endpoint": "zerobus.example.com", "client_secret": "s3cr3t-value-123"}
    bad = http.put(gui.url + "/api/sink", json=shown | retyped, timeout=30)
    assert bad.status_code == 400
    assert bad.json()["detail"] == ["sink.zerobus.zerobus_endpoint: must be a URL starting with https:// (or http://)"]
    assert http.put(gui.url + "/api/sink", json={"type": "delta"}, timeout=30).status_code == 200


@pytest.mark.parametrize("name", ["../evil.pem", "..", "sub/dir.pem", "/etc/passwd", ".hidden", "a\\b.pem", "x" * 200])
def test_uploads_cannot_leave_the_certs_directory(gui: Gui, name: str):
    http = gui.login()
    pem = _pem_cert()
    answer = http.post(gui.url + "/api/certs", json={"name": name, "kind": "ca", "pem": pem}, timeout=10)
    assert answer.status_code == 400
    assert "refused" in answer.json()["detail"][0]
    assert not (gui.config_dir / "evil.pem").exists()


def test_pem_validation(gui: Gui):
    http = gui.login()
    bad = http.post(gui.url + "/api/certs", json={"name": "ca.pem", "kind": "ca", "pem": "hello"}, timeout=10)
    assert bad.status_code == 400
    assert bad.json()["detail"] == ["not a PEM certificate: expected a '-----BEGIN CERTIFICATE-----' block"]
    broken = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"
    bad = http.post(gui.url + "/api/certs", json={"name": "ca.pem", "kind": "ca", "pem": broken}, timeout=10)
    assert "does not decode" in bad.json()["detail"][0]
    key_as_cert = http.post(gui.url + "/api/certs", json={"name": "k.pem", "kind": "client_key", "pem": _pem_cert()})
    assert "not a PEM private key" in key_as_cert.json()["detail"][0]
    good = http.post(gui.url + "/api/certs", json={"name": "ca.pem", "kind": "ca", "pem": _pem_cert()}, timeout=10)
    assert good.status_code == 200
    assert "CN=gui-test-ca" in good.json()["message"]
    assert Path(good.json()["path"]) == (gui.config_dir / "certs" / "ca.pem").resolve()
    assert http.get(gui.url + "/api/certs", timeout=10).json()["files"] == ["ca.pem"]


def test_logs_filter_search_and_download(gui: Gui):
    http = gui.login()
    lines = http.get(gui.url + "/api/logs", params={"level": "INFO", "q": "agent gui-test started"}, timeout=10).json()
    assert lines["lines"]
    assert all("agent gui-test started" in line["msg"] for line in lines["lines"])
    errors_only = http.get(gui.url + "/api/logs", params={"level": "ERROR"}, timeout=10).json()["lines"]
    assert all(line["level"] in ("ERROR", "CRITICAL") for line in errors_only)
    download = http.get(gui.url + "/api/logs/download", params={"q": "started"}, timeout=10)
    assert download.headers["content-disposition"] == 'attachment; filename="iot-connector.log"'
    assert "agent gui-test started" in download.text
    assert PASSWORD not in download.text


def test_change_password(gui: Gui):
    http = gui.login()
    wrong = http.post(gui.url + "/api/password", json={"current": "nope", "new": "another-pass-1"}, timeout=10)
    assert wrong.json()["detail"] == ["the current password is wrong"]
    short = http.post(gui.url + "/api/password", json={"current": PASSWORD, "new": "short"}, timeout=10)
    assert short.json()["detail"] == [
        "the password needs at least 12 characters (a few unrelated words make a good one)"
    ]
    assert http.post(gui.url + "/api/password", json={"current": PASSWORD, "new": "another-pass-1"}, timeout=10).ok
    other = gui.login("another-pass-1")
    assert other.post(gui.url + "/api/password", json={"current": "another-pass-1", "new": PASSWORD}, timeout=10).ok
    assert "user.password" in (gui.config_dir / "audit.log").read_text()


def test_login_is_rate_limited_and_the_limit_names_the_wait():
    """Its own server: the lock-out would disturb the other tests of this module."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        gui = Gui(Path(tmp) / "config", env={"IOT_CONNECTOR_GUI_LOGIN_DELAY_S": "60"}).start()
        try:
            codes = [
                requests.post(gui.url + "/api/login", json={"username": "admin", "password": "x"}, timeout=10)
                for _ in range(6)
            ]
            assert [c.status_code for c in codes] == [401] * 5 + [429]
            assert "too many failed attempts; try again in" in codes[-1].json()["detail"][0]
            assert int(codes[-1].headers["Retry-After"]) > 0
            right = requests.post(gui.url + "/api/login", json={"username": "admin", "password": PASSWORD}, timeout=10)
            assert right.status_code == 429  # even the right password waits: no guessing during the lock-out
        finally:
            gui.stop()


def _pem_cert() -> str:
    return self_signed_pem("gui-test-ca")[0].decode()


def test_uploaded_certificates_are_listed_downloaded_and_deleted_but_keys_never_sent_back(gui: Gui):
    http = gui.login()
    cert, key = self_signed_pem("gui-download-ca")
    for name, kind, pem in (("dl-ca.pem", "ca", cert), ("dl-client.key", "client_key", key)):
        stored = http.post(gui.url + "/api/certs", json={"name": name, "kind": kind, "pem": pem.decode()}, timeout=10)
        assert stored.status_code == 200, stored.text
    listed = http.get(gui.url + "/api/certs", timeout=10).json()
    assert {"dl-ca.pem", "dl-client.key"} <= set(listed["files"])
    assert listed["dir"] == str((gui.config_dir / "certs").resolve())  # the source forms' file pickers use it
    assert requests.get(gui.url + "/api/certs/dl-ca.pem", timeout=10).status_code == 401
    download = http.get(gui.url + "/api/certs/dl-ca.pem", timeout=10)
    assert download.status_code == 200
    assert download.text == cert.decode()
    assert 'filename="dl-ca.pem"' in download.headers["content-disposition"]
    refused = http.get(gui.url + "/api/certs/dl-client.key", timeout=10)
    assert refused.status_code == 403
    assert refused.json()["detail"] == ["dl-client.key holds a private key: keys are never sent back"]
    assert http.get(gui.url + "/api/certs/..%2Fgui_users.json", timeout=10).status_code == 404
    assert http.get(gui.url + "/api/certs/nothing.pem", timeout=10).status_code == 404

    no_csrf = requests.delete(gui.url + "/api/certs/dl-ca.pem", cookies=http.cookies, timeout=10)
    assert no_csrf.status_code == 403
    assert http.delete(gui.url + "/api/certs/dl-ca.pem", timeout=10).status_code == 200
    assert not (gui.config_dir / "certs" / "dl-ca.pem").exists()
    assert "dl-ca.pem" not in http.get(gui.url + "/api/certs", timeout=10).json()["files"]
    assert http.delete(gui.url + "/api/certs/dl-ca.pem", timeout=10).status_code == 404
    assert '"action": "cert.delete"' in (gui.config_dir / "audit.log").read_text()


def test_the_page_has_a_favicon_served_offline(gui: Gui):
    page = requests.get(gui.url + "/", timeout=5).text
    assert '<link rel="icon" type="image/svg+xml" href="/static/favicon.svg">' in page
    icon = requests.get(gui.url + "/static/favicon.svg", timeout=5)
    assert icon.status_code == 200
    assert icon.headers["content-type"].startswith("image/svg+xml")
    assert "http" not in icon.text.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from elsewhere
