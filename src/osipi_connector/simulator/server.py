"""Run the simulator with uvicorn: blocking (`serve`) or in a background thread (`running_simulator`)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import uvicorn

from osipi_connector.simulator.app import SimulatorApp
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.core import Simulator


@dataclass
class RunningSimulator:
    url: str  # e.g. http://127.0.0.1:41234/piwebapi
    app: SimulatorApp
    server: uvicorn.Server

    @property
    def sim(self) -> Simulator:
        return self.app.sim


def build_server(
    config: SimConfig,
    tls_cert: str | None = None,
    tls_key: str | None = None,
    log_level: str = "warning",
) -> tuple[uvicorn.Server, SimulatorApp]:
    app = SimulatorApp(Simulator(config))
    uv_config = uvicorn.Config(
        app,
        http="httptools",
        lifespan="off",
        log_level=log_level,
        access_log=False,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        timeout_keep_alive=30,
        server_header=False,
        date_header=True,
    )
    return uvicorn.Server(uv_config), app


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)  # connections queue from now on, so the printed URL is usable at once
    sock.set_inheritable(True)
    return sock


def serve(config: SimConfig, host: str, port: int, tls_cert: str | None = None, tls_key: str | None = None) -> None:
    """Serve until interrupted (the `osipi-connector simulate` command)."""
    server, _ = build_server(config, tls_cert, tls_key, log_level="info")
    sock = _bind(host, port)
    scheme = "https" if tls_cert else "http"
    print(f"PI Web API simulator: {scheme}://{host}:{sock.getsockname()[1]}/piwebapi", flush=True)
    server.run(sockets=[sock])


@contextlib.contextmanager
def running_simulator(
    config: SimConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> Iterator[RunningSimulator]:
    """A simulator on a free port in a background thread, stopped on exit."""
    server, app = build_server(config or SimConfig(), tls_cert, tls_key)
    sock = _bind(host, port)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="pi-simulator")
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the PI Web API simulator did not start")
        time.sleep(0.01)
    scheme = "https" if tls_cert else "http"
    try:
        yield RunningSimulator(f"{scheme}://{host}:{sock.getsockname()[1]}/piwebapi", app, server)
    finally:
        server.should_exit = True
        thread.join(timeout=1)
        if thread.is_alive():  # a client still holds a connection; a TLS close waits for its close_notify
            server.force_exit = True
            thread.join(timeout=10)
        sock.close()
