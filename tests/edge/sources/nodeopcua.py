"""The node-opcua test server (nodeopcua_server.js) as a process on 127.0.0.1: start, stop, restart on its port.

node-opcua is an OPC UA stack written independently of asyncua (the one Node-RED uses); a value that travels
from it through our asyncua client unchanged was not shaped by one library's view of the other.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from asyncua.crypto.cert_gen import generate_private_key, generate_self_signed_app_certificate
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.edge.sources.helpers import free_port

ROOT = Path(__file__).resolve().parents[3]
NODE_MODULES = ROOT / "build" / "node-opcua" / "node_modules"
SCRIPT = Path(__file__).with_name("nodeopcua_server.js")
NAMESPACE = "urn:nodeopcua:plant"
SERVER_URI = "urn:nodeopcua:test-server"
COUNTER = "Counter"
# name -> (OPC UA data type, value served): 20 variables; Counter counts up every COUNTER_INTERVAL_MS.
VARIABLES: dict[str, tuple[str, object]] = {
    "Temperature": ("Double", 21.5),
    "Pressure": ("Double", 101325.0),
    "Flow": ("Float", 12.25),
    "Level": ("Int16", -300),
    "Count": ("Int32", -42),
    "Batch": ("UInt16", 65000),
    "Produced": ("UInt32", 4000000000),
    "Energy": ("Int64", -(2**40) - 3),
    "Total": ("UInt64", 2**50 + 1),
    "Running": ("Boolean", True),
    "Alarm": ("Boolean", False),
    "Recipe": ("String", "recipe-7"),
    "Operator": ("String", "Zoë Ürün 温度"),
    "Started": ("DateTime", "2025-03-01T12:00:00.000Z"),
    "Mode": ("Byte", 3),
    "Offset": ("SByte", -5),
    "Profile": ("Double", [1.0, 2.0, 3.5]),
    "Setpoints": ("Int32", [1, -2, 3]),
    "Ratio": ("Float", 0.25),
    COUNTER: ("UInt32", 0),
}
COUNTER_INTERVAL_MS = 20
READY_TIMEOUT_S = 60.0


def node_id(name: str) -> str:
    return f"nsu={NAMESPACE};s=Line1.{name}"


def _server_certificate(directory: Path) -> tuple[Path, Path, Path]:
    """A self-signed server certificate for SERVER_URI and 127.0.0.1: (cert.der for the agent, cert.pem and
    key.pem for node-opcua)."""
    key = generate_private_key()
    names = [
        x509.UniformResourceIdentifier(SERVER_URI),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
        x509.DNSName("localhost"),
    ]
    cert = generate_self_signed_app_certificate(
        key,
        SERVER_URI,
        {"commonName": "node-opcua test server"},
        names,
        extended=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
        days=30,
    )
    der, pem, key_pem = directory / "server_cert.der", directory / "server_cert.pem", directory / "server_key.pem"
    der.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return der, pem, key_pem


def _json_value(data_type: str, value: object) -> object:
    """64-bit integers as text: JSON numbers are doubles in JavaScript."""
    return str(value) if data_type in ("Int64", "UInt64") else value


class NodeOpcuaServer:
    """One node-opcua server process; `trusted_clients` are the client certificates (DER) it accepts on the
    secured endpoint. `stop()` then `start()` restarts it on the same port with the same certificate."""

    def __init__(self, directory: Path, trusted_clients: list[Path] | None = None):
        node = shutil.which("node")
        if node is None or not (NODE_MODULES / "node-opcua").is_dir():
            pytest.fail(
                "node-opcua is not installed: run `bash tools/node-opcua.sh` (make test does; it needs nodejs and npm "
                "from tools/system-deps.sh)",
                pytrace=False,
            )
        self.node = node
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.cert_der, cert_pem, key_pem = _server_certificate(directory)
        self.spec = directory / "spec.json"
        self.spec.write_text(
            json.dumps(
                {
                    "port": self.port,
                    "pki": str(directory / "pki"),
                    "cert": str(cert_pem),
                    "key": str(key_pem),
                    "application_uri": SERVER_URI,
                    "trusted_clients": [str(p) for p in trusted_clients or []],
                    "namespace": NAMESPACE,
                    "variables": [
                        {"name": n, "type": t, "value": _json_value(t, v)} for n, (t, v) in VARIABLES.items()
                    ],
                    "counter": COUNTER,
                    "counter_interval_ms": COUNTER_INTERVAL_MS,
                }
            )
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = directory / "server.log"

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/plant"

    def start(self) -> NodeOpcuaServer:
        """Start the process and return once it listens (it prints "ready ..." to its log); bounded."""
        env = {**os.environ, "NODE_PATH": str(NODE_MODULES)}
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "a") as log:  # node-opcua writes its warnings to stdout too: all of it to the log
            self.proc = subprocess.Popen(
                [self.node, str(SCRIPT), str(self.spec)], stdout=log, stderr=subprocess.STDOUT, env=env
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and self.proc.poll() is None:
            with open(self.log) as log:
                log.seek(offset)
                if any(line.startswith("ready ") for line in log):
                    return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"node-opcua server did not start: {self.log.read_text()[offset:][-2000:]}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None


def served(name: str) -> object:
    """The value the server serves for `name`, as the record carries it (DateTime: epoch microseconds)."""
    _type, value = VARIABLES[name]
    if name == "Started":
        return int(dt.datetime.fromisoformat(str(value).replace("Z", "+00:00")).timestamp() * 1_000_000)
    return value
