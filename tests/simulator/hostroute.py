"""Route a client's hard-coded PI Web API host to a local simulator, as DNS or a proxy would.

Some clients call a fixed server no matter which URL they are given (tagreader 6.3 looks data server
WebIDs up on `https://piwebapi.equinor.com/piwebapi`). `HostRoute` is a CONNECT proxy on 127.0.0.1 that
tunnels exactly the named host:port pairs to local ports and refuses everything else, so the test
never leaves the machine; `certificate_for` makes a TLS certificate that names those hosts.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from pathlib import Path

from tests.certs import self_signed

TIMEOUT_S = 30


def certificate_for(folder: Path, hosts: list[str]) -> tuple[str, str]:
    """A self-signed certificate (its own CA) for `hosts` and 127.0.0.1; returns (cert, key) paths."""
    issued = self_signed(folder, hosts[0], tuple(hosts), stem="cert")
    return str(issued.cert), str(issued.key)


class HostRoute:
    """A CONNECT-only proxy: `routes` maps "host:port" to a local port; anything else gets 403."""

    def __init__(self, routes: dict[str, int]):
        self.routes = {k.lower(): v for k, v in routes.items()}
        self.tunnels: list[str] = []  # every host:port tunnelled, for assertions
        route = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.connection.settimeout(TIMEOUT_S)
                request_line = self.rfile.readline(4096).decode("latin-1").split()
                while self.rfile.readline(4096) not in (b"\r\n", b"\n", b""):
                    pass  # headers
                if len(request_line) < 2 or request_line[0] != "CONNECT" or request_line[1].lower() not in route.routes:
                    self.wfile.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                    return
                target = request_line[1].lower()
                upstream = socket.create_connection(("127.0.0.1", route.routes[target]), timeout=TIMEOUT_S)
                route.tunnels.append(target)
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                _pipe(self.connection, upstream)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True, name="host-route")

    def __enter__(self) -> HostRoute:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def _pipe(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes (or stays silent for TIMEOUT_S)."""

    def copy(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    back = threading.Thread(target=copy, args=(upstream, client), daemon=True)
    back.start()
    copy(client, upstream)
    back.join(timeout=TIMEOUT_S)
    upstream.close()
