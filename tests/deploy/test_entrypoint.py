"""The container entrypoint outside Docker: read-only code, UID 1000, only the four volumes writable.

What a user of the image sees: the first start seeds the spool's place, metrics answer, records land, the
GUI answers, the HEALTHCHECK script passes, SIGTERM stops it cleanly, and nothing is written outside
/app/{config,certs,spool,logs} (the root filesystem of the real container is read-only).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import urllib3
import yaml
from deltalake import DeltaTable
from prometheus_client.parser import text_string_to_metric_families

from tests.certs import self_signed
from tests.deploy.container_layout import Layout, new_layout, snapshot

pytestmark = pytest.mark.integration
METRICS_LINE = re.compile(r"metrics on http://[^:]+:(\d+)/metrics")


@pytest.fixture
def layout() -> Iterator[Layout]:
    built = new_layout()
    yield built
    built.remove()


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _metrics_port(layout: Layout) -> int:
    log = layout.app / "logs" / "agent.log"

    def port() -> int | None:
        match = METRICS_LINE.search(log.read_text()) if log.exists() else None
        return int(match.group(1)) if match else None

    return _wait(port, 30, "the metrics line in logs/agent.log")


def _samples(port: int) -> dict[tuple[str, tuple], float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _get(url: str, verify: bool = True) -> requests.Response | None:
    try:
        return requests.get(url, timeout=5, verify=verify)
    except requests.ConnectionError:
        return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(layout: Layout, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        layout.command(*args), env=layout.env(**env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _stop(agent: subprocess.Popen) -> tuple[int, str]:
    agent.send_signal(signal.SIGTERM)
    out, _ = agent.communicate(timeout=30)
    return agent.returncode, out


def _write_state(layout: Layout) -> Path:
    """What an operator configured: the counter test source, metrics on any free port."""
    config = layout.app / "config"
    state = {
        "agent_id": "container-test",
        "plugins": ["deploy_plugins.counter_source"],
        "metrics": {"port": 0},
        "pipeline": {"batch_max_records": 200, "batch_max_wait_ms": 20},
        "sources": [{"name": "c1", "type": "counter", "batch": 20, "interval_s": 0.02}],
    }
    (config / "connector_state.json").write_text(json.dumps(state))
    if layout.as_uid is not None:
        os.chown(config / "connector_state.json", layout.as_uid, layout.as_uid)
    return config


def _healthcheck(layout: Layout, metrics_port: int, gui_port: int | None = None) -> subprocess.CompletedProcess:
    """deploy/healthcheck.py as Docker runs it: in the container's environment (mode run without a GUI port)."""
    mode = {"IOT_CONNECTOR_MODE": "run"} if gui_port is None else {"IOT_CONNECTOR_GUI_PORT": str(gui_port)}
    env = layout.env(IOT_CONNECTOR_METRICS_PORT=str(metrics_port), **mode)
    return subprocess.run(
        ["python", str(layout.bin / "healthcheck.py")], env=env, capture_output=True, text=True, timeout=30
    )


def _foreign_files(layout: Layout, code_before: dict, started: float) -> list[Path]:
    """What the container user wrote outside the volumes: in the code copy, or in /tmp, /var/tmp, /home."""
    code_after = snapshot(layout.root / "opt")
    outside = {p for p in code_before.keys() | code_after.keys() if code_before.get(p) != code_after.get(p)}
    if layout.as_uid is not None:
        for top in ("/tmp", "/var/tmp", "/home"):
            # os.walk ignores what vanishes meanwhile (other processes share /tmp)
            for folder, dirs, files in os.walk(top):
                for name in dirs + files:
                    path = Path(folder, name)
                    try:
                        st = path.lstat()
                    except OSError:
                        continue
                    if st.st_uid == layout.as_uid and st.st_mtime >= started and layout.root not in path.parents:
                        outside.add(path)
    return sorted(outside)


def test_first_start_seeds_the_spool_volume_serves_metrics_and_stops_on_sigterm(layout: Layout) -> None:
    started, code_before = time.time() - 1, snapshot(layout.root / "opt")
    agent = _start(layout, "--metrics-port", "0", IOT_CONNECTOR_MODE="run")
    try:
        port = _metrics_port(layout)
        assert ("iot_queue_depth", ()) in _samples(port)
        assert yaml.safe_load((layout.app / "config" / "connector.yaml").read_text()) == {
            "pipeline": {"spool": {"directory": str(layout.app / "spool" / "wal")}}
        }
    finally:
        code, out = _stop(agent)
    assert code == 0, out
    assert "agent edge-agent started" in out  # stdout is the container log
    assert (layout.app / "spool" / "home").is_dir()
    assert (layout.app / "spool" / "tmp").is_dir()
    assert _foreign_files(layout, code_before, started) == []


def test_records_flow_into_the_volumes_healthcheck_passes_then_fails_after_sigterm(layout: Layout) -> None:
    config = _write_state(layout)
    started, code_before = time.time() - 1, snapshot(layout.root / "opt")
    agent = _start(layout, IOT_CONNECTOR_MODE="run")
    try:
        port = _metrics_port(layout)
        written = ("iot_records_written_total", (("protocol", "counter"),))
        _wait(lambda: _samples(port).get(written, 0) >= 200, 30, "200 records written")
        check = _healthcheck(layout, port)
        assert check.returncode == 0, check.stdout + check.stderr
        assert f"127.0.0.1:{port}/metrics: 200" in check.stdout
        assert not (config / "connector.yaml").exists()  # an existing configuration is never touched
    finally:
        code, out = _stop(agent)
    assert code == 0, out
    rows = DeltaTable(str(config / "data" / "iot_records")).to_pyarrow_table(columns=["seq"]).num_rows
    assert rows >= 200
    assert (config / "spool" / "cursor.json").exists()  # no seeding: the spool stays where the state says
    assert _foreign_files(layout, code_before, started) == []
    after = _healthcheck(layout, port)
    assert after.returncode == 1
    assert "unhealthy" in after.stdout
    leftover = subprocess.run(["pgrep", "-f", str(layout.bin)], capture_output=True, text=True).stdout
    assert leftover == "", "a process of the container outlived SIGTERM (logtee?)"


def _serve(layout: Layout, **env: str) -> tuple[int, int, subprocess.Popen]:
    """The image's default command (`serve`: GUI + agent + metrics) on free ports; (gui, metrics, process)."""
    _write_state(layout)
    gui = _free_port()
    agent = _start(layout, IOT_CONNECTOR_GUI_PORT=str(gui), IOT_CONNECTOR_GUI_HOST="127.0.0.1", **env)
    return gui, _metrics_port(layout), agent


def _self_signed(certs: Path, owner: int | None) -> dict[str, str]:
    """A throwaway certificate for the GUI's own TLS, in the certs volume (as an operator would put it)."""
    issued = self_signed(certs, "iot-edge.local", ("iot-edge.local",), stem="gui")
    paths = {"IOT_CONNECTOR_GUI_TLS_CERT": issued.cert, "IOT_CONNECTOR_GUI_TLS_KEY": issued.key}
    for path in paths.values():
        path.chmod(0o600)
        if owner is not None:
            os.chown(path, owner, owner)
    return {name: str(path) for name, path in paths.items()}


def test_default_mode_serves_the_gui_and_masks_the_first_run_password_in_the_log_file(layout: Layout) -> None:
    started, code_before = time.time() - 1, snapshot(layout.root / "opt")
    gui, port, agent = _serve(layout)
    try:
        page = _wait(lambda: _get(f"http://127.0.0.1:{gui}/"), 30, "the GUI page")
        assert page.status_code == 200
        assert "<html" in page.text.lower()
        check = _healthcheck(layout, port, gui)
        assert check.returncode == 0, check.stdout + check.stderr
        dead_gui = _healthcheck(layout, port, _free_port())  # serve mode: the metrics alone are not enough
        assert dead_gui.returncode == 1
        assert "does not answer" in dead_gui.stdout
    finally:
        _code, out = _stop(agent)
    password = re.search(r"user 'admin' password: (\S+)", out)
    assert password, out  # printed once on the container log for the operator ...
    log_file = (layout.app / "logs" / "agent.log").read_text()
    assert "user 'admin' password: ***" in log_file
    assert password.group(1) not in log_file  # ... but never kept in the log volume
    assert _foreign_files(layout, code_before, started) == []


def test_gui_with_its_own_tls_passes_the_healthcheck_over_https(layout: Layout) -> None:
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # our own throwaway certificate
    tls = _self_signed(layout.app / "certs", layout.as_uid)
    gui, port, agent = _serve(layout, **tls)
    try:
        _wait(lambda: _get(f"https://127.0.0.1:{gui}/", verify=False), 30, "the GUI over HTTPS")
        env = {"IOT_CONNECTOR_GUI_PORT": str(gui), "IOT_CONNECTOR_METRICS_PORT": str(port), **tls}
        check = subprocess.run(
            ["python", str(layout.bin / "healthcheck.py")], env=layout.env(**env), capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
    finally:
        _stop(agent)
    assert "Invalid HTTP request" not in (layout.app / "logs" / "agent.log").read_text()


def test_sigterm_in_serve_mode_stops_the_agent_cleanly(layout: Layout) -> None:
    _gui, _port, agent = _serve(layout)
    code, out = _stop(agent)
    assert "stopping: sources first, then the pipeline" in out
    assert code == 0, out


def test_a_volume_the_container_user_cannot_write_fails_with_what_to_do(layout: Layout) -> None:
    logs = layout.app / "logs"
    if layout.as_uid is not None:
        os.chown(logs, 0, 0)
        logs.chmod(0o755)
    else:
        logs.chmod(0o555)
    result = subprocess.run(layout.command(), env=layout.env(), capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert f"{logs} is not writable" in result.stderr
    assert "chown -R 1000:1000" in result.stderr
    assert "fsGroup" in result.stderr
