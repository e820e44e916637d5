"""Start `iot-connector serve` as a real process on free 127.0.0.1 ports, as an operator would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from tests.edge.sources.helpers import free_port

PASSWORD = "correct horse battery"


class Gui:
    def __init__(self, config_dir: Path, state: dict | None = None, env: dict[str, str] | None = None):
        self.config_dir = config_dir
        self.env = env or {}
        config_dir.mkdir(parents=True, exist_ok=True)
        base = {"agent_id": "gui-test", "metrics": {"port": free_port(), "host": "127.0.0.1"}}
        base["pipeline"] = {"batch_max_wait_ms": 50, "spool": {"durability": "write"}}
        (config_dir / "connector_state.json").write_text(json.dumps(base | (state or {})))
        self.metrics_port = base["metrics"]["port"]
        self.port = free_port()
        scheme = "https" if "IOT_CONNECTOR_GUI_TLS_CERT" in self.env else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.stderr = config_dir / "serve.stderr"
        self.proc: subprocess.Popen | None = None

    def start(self) -> Gui:
        env = (
            os.environ
            | {
                "IOT_CONNECTOR_GUI_HOST": "127.0.0.1",
                "IOT_CONNECTOR_GUI_PORT": str(self.port),
                "IOT_CONNECTOR_ADMIN_PASSWORD": PASSWORD,
            }
            | self.env
        )
        cmd = [sys.executable, "-m", "iot_connector.cli", "serve", "--config-dir", str(self.config_dir)]
        self.proc = subprocess.Popen(cmd, env=env, stderr=self.stderr.open("w"))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"serve exited:\n{self.stderr.read_text()[-3000:]}")
            try:
                requests.get(self.url + "/", timeout=1, verify=self.env.get("REQUESTS_CA_BUNDLE", True))
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        raise RuntimeError("the GUI did not listen within 30 s")

    def login(self, password: str = PASSWORD) -> requests.Session:
        """A logged-in HTTP session sending the CSRF header on every request."""
        http = requests.Session()
        http.verify = self.env.get("REQUESTS_CA_BUNDLE", True)
        answer = http.post(self.url + "/api/login", json={"username": "admin", "password": password}, timeout=10)
        answer.raise_for_status()
        http.headers["X-CSRF-Token"] = answer.json()["csrf"]
        return http

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(20)
        self.proc = None
