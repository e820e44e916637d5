"""The GUI under attack, over HTTP against a real `iot-connector serve` process on 127.0.0.1 (issue 13):
oversized bodies, stored secrets sent elsewhere, raced and shared lockouts, sessions surviving a password
change, logins without a trace, private keys left readable, proxy passwords in clear, weak passwords."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from iot_connector.config import load_config
from tests.certs import self_signed_pem
from tests.edge.sources.helpers import free_port
from tests.web.gui_process import PASSWORD, Gui
from tests.web.peers import Listener

pytestmark = pytest.mark.integration
MB = 1024 * 1024


@pytest.fixture(scope="module")
def gui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gui]:
    running = Gui(tmp_path_factory.mktemp("gui") / "config").start()
    yield running
    running.stop()


@pytest.fixture
def own_gui(tmp_path: Path) -> Iterator[Gui]:
    """A server of its own, for tests that lock out or log out; a long first wait of the login backoff, so a
    slow machine cannot make a refused guess a checked one."""
    running = Gui(tmp_path / "config", env={"IOT_CONNECTOR_GUI_LOGIN_DELAY_S": "30"}).start()
    yield running
    running.stop()


def rss_mb(gui: Gui) -> float:
    assert gui.proc is not None
    status = Path(f"/proc/{gui.proc.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) / 1024


def push(port: int, head: bytes, chunk: bytes, total: int, chunked: bool = False) -> tuple[bytes, int]:
    """Send `head`, then up to `total` body bytes as fast as the server takes them, while reading its answer;
    stop once it answered and closed (or stopped reading). Returns (answer, body bytes sent)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(head)
    answer, sent, deadline = b"", 0, time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock] if sent < total else [], [], 2)
            if readable:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
            elif writable:
                piece = b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk
                sock.sendall(piece)
                sent += len(chunk)
            elif not readable:
                break  # the server neither reads nor answers
    except (BrokenPipeError, ConnectionResetError):
        with_more = sock.recv(65536) if select.select([sock], [], [], 1)[0] else b""
        answer += with_more
    finally:
        sock.close()
    return answer, sent


# --- 2. request bodies are capped before they are read, and before the login check ------------------------
def test_an_unauthenticated_200_mb_put_is_refused_without_the_server_growing(gui: Gui):
    before = rss_mb(gui)
    head = (
        b"PUT /api/sink HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % (200 * MB)
    )
    answer, sent = push(gui.port, head, b"x" * MB, 200 * MB)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"request body too large (at most 16384 bytes here)" in answer
    assert sent < 50 * MB  # the server hung up instead of swallowing the body
    # the same without a declared length: a chunked stream is counted and cut off
    head = b"POST /api/certs HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
    answer, sent = push(gui.port, head, b"y" * MB, 200 * MB, chunked=True)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < 50 * MB
    assert rss_mb(gui) - before < 30, f"RSS grew from {before:.0f} to {rss_mb(gui):.0f} MB"


def test_after_login_each_route_has_its_own_limit(gui: Gui):
    http = gui.login()
    big_sink = {"type": "delta", "path": "x" * (300 * 1024)}
    answer = http.put(gui.url + "/api/sink", json=big_sink, timeout=10)
    assert answer.status_code == 413
    assert answer.json() == {"detail": [f"request body too large (at most {256 * 1024} bytes here)"]}
    assert answer.headers["x-frame-options"] == "DENY"  # the refusal carries the security headers too
    # a certificate upload may be larger (after login only): it reaches the PEM check and is refused there
    pem = "-----BEGIN CERTIFICATE-----\n" + "A" * (600 * 1024)
    upload = http.post(gui.url + "/api/certs", json={"name": "big.pem", "kind": "ca", "pem": pem}, timeout=10)
    assert upload.status_code == 400
    assert upload.json()["detail"][0].startswith("file too large")
    anonymous = requests.post(gui.url + "/api/certs", json={"name": "big.pem", "kind": "ca", "pem": pem}, timeout=10)
    assert anonymous.status_code == 413
    # a cookie header the limit cannot make sense of is no session, not a crash
    odd = requests.get(gui.url + "/api/config", headers={"Cookie": 'a<b=1; x="open; iotc_session=x'}, timeout=10)
    assert odd.status_code == 401


# --- 3. a stored secret only goes to the endpoint it was stored for ----------------------------------------
def test_stored_secrets_are_not_sent_to_a_changed_endpoint(gui: Gui):
    http = gui.login()
    sink = {
        "type": "zerobus",
        "workspace_url": f"https://127.0.0.1:{free_port()}",
        "zerobus_endpoint": f"https://127.0.0.1:{free_port()}",
        "client_id": "sp-1",
        "client_secret": "stored-zerobus-secret",
        "table": "main.edge.iot",
    }
    assert http.put(gui.url + "/api/sink", json=sink, timeout=30).status_code == 200
    mqtt = {
        "name": "mq",
        "type": "mqtt",
        "url": f"mqtt://127.0.0.1:{free_port()}",
        "username": "u",
        "password": "stored-mqtt-password",
        "topics": [{"topic": "a/#"}],
    }
    opcua = {
        "name": "ua",
        "type": "opcua",
        "endpoint": f"opc.tcp://127.0.0.1:{free_port()}",
        "username": "u",
        "password": "stored-opcua-password",
        "nodes": ["i=2258"],
    }
    for source in (mqtt, opcua):
        assert http.post(gui.url + "/api/sources", json={"source": source}, timeout=30).status_code == 200
    shown = http.get(gui.url + "/api/config", timeout=10).json()["config"]
    by_name = {s["name"]: s for s in shown["sources"]}
    assert by_name["mq"]["password"] == by_name["ua"]["password"] == shown["sink"]["client_secret"] == "********"

    with Listener() as attacker:
        evil_http = f"http://127.0.0.1:{attacker.port}"
        sink_back = shown["sink"] | {"workspace_url": evil_http}
        for method, path in (("POST", "/api/sink/test"), ("PUT", "/api/sink")):
            answer = http.request(method, gui.url + path, json=sink_back, timeout=30)
            assert answer.status_code == 400, (path, answer.text)
            assert answer.json()["detail"] == [
                "sink.client_secret: workspace_url changed, so the stored client_secret is not sent there; "
                "enter the client_secret again"
            ]
        edits = (
            (by_name["mq"] | {"url": f"mqtt://127.0.0.1:{attacker.port}"}, "sources.mq.password: url changed"),
            (by_name["ua"] | {"endpoint": f"opc.tcp://127.0.0.1:{attacker.port}"}, "sources.ua.password: endpoint"),
            (by_name["ua"] | {"trust_any_server": True}, "sources.ua.password: trust_any_server changed"),
        )
        for source, message in edits:
            edit = {"original": source["name"], "source": source}
            for path in ("/api/sources/test", "/api/sources", "/api/sources/browse"):
                answer = http.post(gui.url + path, json=edit, timeout=30)
                assert answer.status_code == 400, (path, answer.text)
                assert answer.json()["detail"][0].startswith(message), answer.text
                assert answer.json()["detail"][0].endswith("enter the password again")
        # a stored secret cannot be borrowed by a new source either
        stolen = {"source": by_name["ua"] | {"name": "new", "endpoint": f"opc.tcp://127.0.0.1:{attacker.port}"}}
        answer = http.post(gui.url + "/api/sources/test", json=stolen, timeout=30)
        assert answer.json()["detail"] == ["sources.new.password: nothing is stored here to keep; type the value"]
        time.sleep(0.5)
        assert attacker.connections == 0
        assert attacker.received == b""

        # typed again, the new secret (and only it) goes to the new place: the listener does receive it
        retyped = sink_back | {"client_secret": "typed-again-secret"}
        assert http.post(gui.url + "/api/sink/test", json=retyped, timeout=30).status_code == 400  # no answer
        deadline = time.monotonic() + 10
        while b"Authorization" not in attacker.received and time.monotonic() < deadline:
            time.sleep(0.1)
    import base64

    assert base64.b64encode(b"sp-1:typed-again-secret") in attacker.received
    assert base64.b64encode(b"sp-1:stored-zerobus-secret") not in attacker.received
    assert load_config(gui.config_dir).sink.client_secret.get_secret_value() == "stored-zerobus-secret"
    # unchanged destinations keep working with the mask: a rename, another client id
    assert http.put(gui.url + "/api/sink", json=shown["sink"] | {"client_id": "sp-2"}, timeout=30).ok
    renamed = {"original": "mq", "source": by_name["mq"] | {"name": "mq2"}}
    assert http.post(gui.url + "/api/sources", json=renamed, timeout=30).ok
    stored = {s.name: s for s in load_config(gui.config_dir).sources}
    assert stored["mq2"].password.get_secret_value() == "stored-mqtt-password"
    for name in ("mq2", "ua"):
        assert http.delete(gui.url + f"/api/sources/{name}", timeout=30).ok
    assert http.put(gui.url + "/api/sink", json={"type": "delta"}, timeout=30).ok


# --- 4. the login throttle: not raceable, and the right password still gets in -----------------------------
def test_40_concurrent_wrong_logins_get_5_checks_and_the_right_password_still_works(tmp_path: Path):
    # a first wait of 3 s (default 1 s): long enough that a loaded machine still answers inside it
    gui = Gui(tmp_path / "config", env={"IOT_CONNECTOR_GUI_LOGIN_DELAY_S": "3"}).start()
    try:
        _concurrent_logins(gui)
    finally:
        gui.stop()


def _concurrent_logins(gui: Gui) -> None:
    known_browser = gui.login()  # logged in before the attack: it holds a device cookie
    assert known_browser.cookies.get("iotc_device")

    def guess(i: int) -> requests.Response:
        return requests.post(gui.url + "/api/login", json={"username": "admin", "password": f"guess-{i}"}, timeout=60)

    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(guess, range(40)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [401] * 5 + [429] * 35  # each guess counted before its scrypt check: none raced past
    refused = next(a for a in answers if a.status_code == 429)
    assert refused.json()["detail"][0].startswith("too many failed attempts; try again in")
    wait = int(refused.headers["Retry-After"])
    assert 0 < wait <= 4

    right = {"username": "admin", "password": PASSWORD}
    # the operator's own browser is not held up by someone else's guessing
    ok = known_browser.post(gui.url + "/api/login", json=right, timeout=10)
    assert ok.status_code == 200, ok.text
    # a browser without a device cookie waits out the backoff, then the right password gets in
    assert requests.post(gui.url + "/api/login", json=right, timeout=10).status_code == 429
    time.sleep(wait + 0.2)
    assert requests.post(gui.url + "/api/login", json=right, timeout=10).status_code == 200

    # 6. every attempt is in the audit log and the log, without the guesses
    audit = [json.loads(line) for line in (gui.config_dir / "audit.log").read_text().splitlines()]
    actions = [entry["action"] for entry in audit]
    assert actions.count("login.failure") == 5
    assert actions.count("login.throttled") == 1  # once per wait, not once per refused request
    assert actions.count("login.success") == 3
    failure = next(e for e in audit if e["action"] == "login.failure")
    assert failure["user"] == "admin"
    assert failure["client"] == "127.0.0.1"
    text = (gui.config_dir / "audit.log").read_text() + gui.stderr.read_text()
    assert "guess-" not in text
    assert PASSWORD not in text
    assert "audit: login.failure by 'admin' from 127.0.0.1" in gui.stderr.read_text()


# --- 5. a password change ends the other sessions; guessing the current password is throttled --------------
def test_a_password_change_ends_other_sessions_and_is_throttled(own_gui: Gui):
    gui = own_gui
    mine, other = gui.login(), gui.login()
    new = "a much better passphrase"
    assert mine.post(gui.url + "/api/password", json={"current": PASSWORD, "new": new}, timeout=10).ok
    assert other.get(gui.url + "/api/config", timeout=10).status_code == 401
    assert mine.get(gui.url + "/api/config", timeout=10).status_code == 200
    entry = json.loads((gui.config_dir / "audit.log").read_text().splitlines()[-1])
    assert entry["action"] == "user.password"
    assert entry["what"] == {"user": "admin", "other_sessions_ended": 1}

    codes = [
        mine.post(gui.url + "/api/password", json={"current": f"guess-{i}", "new": "x" * 20}, timeout=10)
        for i in range(7)
    ]
    assert [c.status_code for c in codes] == [400] * 5 + [429] * 2
    assert codes[0].json()["detail"] == ["the current password is wrong"]
    assert "user.password.failure" in (gui.config_dir / "audit.log").read_text()


# --- 6. tests and browses are audited ----------------------------------------------------------------------
def test_connection_tests_are_audited_without_secrets(gui: Gui):
    http = gui.login()
    port = free_port()
    source = {
        "name": "probe",
        "type": "opcua",
        "endpoint": f"opc.tcp://127.0.0.1:{port}",
        "password": "typed-probe-secret",
        "username": "u",
        "nodes": ["i=2258"],
        "timeout_s": 0.5,
    }
    assert http.post(gui.url + "/api/sources/test", json={"source": source}, timeout=30).status_code == 400
    assert http.post(gui.url + "/api/sources/browse", json={"source": source}, timeout=30).status_code == 400
    audit = [json.loads(line) for line in (gui.config_dir / "audit.log").read_text().splitlines()]
    tests = [e for e in audit if e["action"] in ("source.test", "source.browse")]
    assert [e["action"] for e in tests[-2:]] == ["source.test", "source.browse"]
    assert tests[-1]["what"] == {"source": "probe", "type": "opcua", "to": source["endpoint"], "root": "i=85"}
    assert "typed-probe-secret" not in (gui.config_dir / "audit.log").read_text()


# --- 7. private keys 0600, strict names, links refused ----------------------------------------------------
def test_private_keys_are_always_0600_and_names_and_links_are_checked(gui: Gui, tmp_path: Path):
    http = gui.login()
    cert, key = (part.decode() for part in self_signed_pem("bundle"))
    certs = gui.config_dir / "certs"

    def upload(name: str, kind: str, pem: str) -> requests.Response:
        return http.post(gui.url + "/api/certs", json={"name": name, "kind": kind, "pem": pem}, timeout=10)

    assert upload("bundle.pem", "client_cert", cert + key).status_code == 200  # a cert+key bundle
    assert (certs / "bundle.pem").stat().st_mode & 0o777 == 0o600
    assert upload("plain.pem", "ca", cert).status_code == 200
    assert (certs / "plain.pem").stat().st_mode & 0o777 == 0o644
    assert upload("plain.pem", "client_key", key).status_code == 200  # a key over an existing 0644 file
    assert (certs / "plain.pem").stat().st_mode & 0o777 == 0o600
    for name in ("x.pem\n", "x\x01.pem", "x.pem\r", "x .pem", "x.pem/"):
        answer = upload(name, "ca", cert)
        assert answer.status_code == 400, repr(name)
        assert "refused" in answer.json()["detail"][0]
    outside = tmp_path / "outside.pem"
    outside.write_text("untouched")
    (certs / "link.pem").symlink_to(outside)
    answer = upload("link.pem", "ca", cert)
    assert answer.json()["detail"] == [
        "file name 'link.pem' refused: a link of that name exists in the certs directory"
    ]
    assert outside.read_text() == "untouched"
    assert sorted(p.name for p in certs.iterdir() if not p.is_symlink()) == ["bundle.pem", "plain.pem"]  # no temp left


# --- 8. proxy credentials ------------------------------------------------------------------------------------
def test_proxy_credentials_are_encrypted_masked_and_never_audited(gui: Gui):
    http = gui.login()
    proxy = f"http://puser:proxy-pass-9876@127.0.0.1:{free_port()}"
    bypass = "127.0.0.1,localhost"  # the GUI's own tests to 127.0.0.1 must not go through it
    assert http.put(gui.url + "/api/settings", json={"proxy": {"https_proxy": proxy, "no_proxy": bypass}}).ok
    shown = http.get(gui.url + "/api/config", timeout=10).json()["config"]["proxy"]
    assert shown["https_proxy"] == proxy.replace("proxy-pass-9876", "********")
    state = (gui.config_dir / "connector_state.json").read_text()
    assert "proxy-pass-9876" not in state
    assert json.loads(state)["proxy"]["https_proxy"].startswith("enc:")
    # sent back masked with another change: kept; masked with another host: the password must be typed again
    assert http.put(gui.url + "/api/settings", json={"proxy": shown | {"no_proxy": "localhost,127.0.0.1"}}).ok
    assert load_config(gui.config_dir).proxy.https_proxy == proxy
    moved = shown | {"https_proxy": shown["https_proxy"].replace("127.0.0.1", "127.0.0.2")}
    answer = http.put(gui.url + "/api/settings", json={"proxy": moved}, timeout=30)
    assert answer.status_code == 400
    assert answer.json()["detail"][0].startswith("proxy.https_proxy: the address changed")
    assert http.put(gui.url + "/api/settings", json={"proxy": {}}, timeout=30).ok
    for text in (
        (gui.config_dir / "audit.log").read_text(),
        gui.stderr.read_text(),
        http.get(gui.url + "/api/logs/download").text,
    ):
        assert "proxy-pass-9876" not in text


# --- 9. weak defaults ----------------------------------------------------------------------------------------
def test_weak_passwords_are_refused_with_a_reason(gui: Gui):
    http = gui.login()
    expected = {
        "12345678": "at least 12 characters",
        "123456789012": "only digits",
        "Password1234!": "common one",
        "qwertyuiop12": "keyboard or number sequence",
        "aaaaaaaaaaaaaa": "too few characters",
    }
    for weak, reason in expected.items():
        answer = http.post(gui.url + "/api/password", json={"current": PASSWORD, "new": weak}, timeout=10)
        assert answer.status_code == 400
        assert reason in answer.json()["detail"][0], weak


def test_a_first_run_password_that_is_too_short_is_a_clear_message(tmp_path: Path):
    env = os.environ | {
        "IOT_CONNECTOR_ADMIN_PASSWORD": "short",
        "IOT_CONNECTOR_GUI_HOST": "127.0.0.1",
        "IOT_CONNECTOR_GUI_PORT": str(free_port()),
    }
    cmd = [sys.executable, "-m", "iot_connector.cli", "serve", "--config-dir", str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "IOT_CONNECTOR_ADMIN_PASSWORD: the password needs at least 12 characters" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "gui_users.json").exists()


def test_plain_http_on_the_network_is_warned_about():
    from iot_connector.web.server import plain_http_warning

    assert "plain HTTP on 0.0.0.0" in (plain_http_warning("0.0.0.0", tls=False) or "")
    assert plain_http_warning("0.0.0.0", tls=True) is None
    assert plain_http_warning("127.0.0.1", tls=False) is None


def test_metrics_can_require_basic_auth(tmp_path: Path):
    port = free_port()
    auth = {"username": "prometheus", "password": "scrape-secret-123"}
    gui = Gui(tmp_path / "config", {"metrics": {"host": "127.0.0.1", "port": port, "basic_auth": auth}}).start()
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                anonymous = requests.get(url, timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"].startswith("Basic")
        assert requests.get(url, auth=("prometheus", "wrong-password-1"), timeout=5).status_code == 401
        scraped = requests.get(url, auth=("prometheus", "scrape-secret-123"), timeout=5)
        assert scraped.status_code == 200
        assert "iot_queue_depth" in scraped.text
        http = gui.login()
        shown = http.get(gui.url + "/api/config", timeout=10).json()["config"]["metrics"]
        assert shown["basic_auth"] == {"username": "prometheus", "password": "********"}
        assert http.put(gui.url + "/api/settings", json={"metrics": shown}, timeout=30).ok  # kept, now encrypted
        state = (gui.config_dir / "connector_state.json").read_text()
        assert "scrape-secret-123" not in state
        assert json.loads(state)["metrics"]["basic_auth"]["password"].startswith("enc:")
    finally:
        gui.stop()


def test_a_bad_login_delay_is_a_clear_message(tmp_path: Path):
    env = os.environ | {
        "IOT_CONNECTOR_ADMIN_PASSWORD": PASSWORD,
        "IOT_CONNECTOR_GUI_HOST": "127.0.0.1",
        "IOT_CONNECTOR_GUI_PORT": str(free_port()),
        "IOT_CONNECTOR_GUI_LOGIN_DELAY_S": "soon",
    }
    cmd = [sys.executable, "-m", "iot_connector.cli", "serve", "--config-dir", str(tmp_path)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "IOT_CONNECTOR_GUI_LOGIN_DELAY_S must be a number of seconds" in done.stderr
