"""Start Debian's mosquitto on a free 127.0.0.1 port with a generated config; restartable on the same port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from tests.certs import Issued
from tests.edge.sources.helpers import free_port

MOSQUITTO = shutil.which("mosquitto") or "/usr/sbin/mosquitto"


class Mosquitto:
    """One broker process. `tls` adds TLS on the same listener; `require_client_cert` makes it mutual."""

    def __init__(
        self,
        directory: Path,
        *,
        tls: tuple[Path, Issued] | None = None,
        require_client_cert: bool = False,
        users: dict[str, str] | None = None,
    ):
        self.directory = directory
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"allow_anonymous {'false' if users else 'true'}",
            "persistence false",
            "user root",  # as root it would switch to user mosquitto, who cannot read pytest's 0700 tmp dirs
            "max_queued_messages 0",  # the default 1000 drops QoS 1 backlogs of slow subscribers
            "max_inflight_messages 0",
            f"log_dest file {directory / 'mosquitto.log'}",
        ]
        if users:
            passwords = directory / "passwords"
            for i, (user, password) in enumerate(users.items()):
                flags = ["-b", "-c"] if i == 0 else ["-b"]
                subprocess.run(["mosquitto_passwd", *flags, str(passwords), user, password], check=True)
            lines.append(f"password_file {passwords}")
        if tls:
            ca, server = tls
            lines += [f"cafile {ca}", f"certfile {server.cert}", f"keyfile {server.key}"]
            if require_client_cert:
                lines += ["require_certificate true", "use_identity_as_username true"]
        self.conf = directory / f"mosquitto-{self.port}.conf"
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> Mosquitto:
        self.proc = subprocess.Popen([MOSQUITTO, "-c", str(self.conf)], stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mosquitto exited: {self.proc.stderr.read().decode() if self.proc.stderr else ''}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not listen within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"


class Publisher:
    """A plain paho client that publishes and waits for the broker's acknowledgement."""

    def __init__(self, port: int, **tls: str):
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=mqtt.MQTTv311)
        if tls:
            self.client.tls_set(**tls)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=qos, retain=retain).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
