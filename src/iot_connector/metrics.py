"""Prometheus metrics of the edge agent, with the deployment guide's names (one registry per agent).

A private CollectorRegistry (not the global one) so tests and the benchmark can run several agents in one
process; `serve()` exposes it on :9090 by default, optionally behind HTTP basic auth (metrics.basic_auth), as
Prometheus exporters offer it; a port open to the network without it is logged as a warning.
"""

from __future__ import annotations

import base64
import hmac
import logging
import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, make_wsgi_app, start_http_server

log = logging.getLogger(__name__)
LOOPBACK = ("127.0.0.1", "::1", "localhost")

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.records_read = Counter("iot_records_read", "Records handed over by a source", ["source"], registry=r)
        self.records_written = Counter(
            "iot_records_written", "Records acknowledged by the sink", ["protocol"], registry=r
        )
        self.records_failed = Counter(
            "iot_records_failed",
            "Records in failed sink writes (retried), refused records and rejected messages (malformed_payload)",
            ["error_type", "source"],
            registry=r,
        )
        self.records_dropped = Counter(
            "iot_records_dropped", "Records dropped by the drop policy when full", ["policy"], registry=r
        )
        self.batch_latency = Histogram(
            "iot_batch_latency_seconds",
            "Sink write of one batch until acknowledged",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge("iot_queue_depth", "Records accepted but not yet acknowledged by the sink", registry=r)
        self.spool_bytes = Gauge("iot_spool_bytes", "Bytes of spool segment files on disk", registry=r)
        self.connection_status = Gauge(
            "iot_connection_status", "1 when the source is connected, else 0", ["source"], registry=r
        )
        self.source_reconnects = Counter(
            "iot_source_reconnects",
            "Successful reconnects: sessions established again after one was lost (failed attempts not counted)",
            ["source"],
            registry=r,
        )
        self.source_attempts = Counter(
            "iot_source_connect_attempts",
            "Sessions tried, the first connect and every retry, successful or not (cheap TCP probes not counted)",
            ["source"],
            registry=r,
        )
        self.sink_up = Gauge(
            "iot_sink_up",
            "1 when the last sink write succeeded and no acknowledgement is overdue (pipeline.sink_ack_timeout_s)",
            registry=r,
        )
        self.delta_maintenance = Counter(
            "iot_delta_maintenance",
            "Compactions, vacuums and checkpoints of the local Delta table (sink delta): a failed one is retried later",
            ["action", "result"],
            registry=r,
        )
        self.delta_blind_append = Gauge(
            "iot_delta_blind_append",
            "1 while the local Delta sink commits its appends itself (~2 ms); 0 while the table needs delta-rs' writer"
            " (~20 ms a commit; a WARNING log line says why)",
            registry=r,
        )
        self.breaker_open = Gauge("iot_circuit_breaker_open", "1 while the sink circuit breaker is open", registry=r)

    def serve(self, port: int, host: str = "0.0.0.0", basic_auth: tuple[str, str] | None = None) -> int:
        """Start the /metrics HTTP endpoint in a daemon thread; returns the bound port (port 0 = any free).
        With `basic_auth` (user, password) every request without those credentials gets 401."""
        if basic_auth is None:
            if host not in LOOPBACK:
                log.warning(
                    "metrics on %s:%d without authentication: whoever reaches the port reads them; set "
                    "metrics.host: 127.0.0.1 or metrics.basic_auth",
                    host,
                    port,
                )
            server, _thread = start_http_server(port, addr=host, registry=self.registry)
        else:
            app = _basic_auth(make_wsgi_app(self.registry), *basic_auth)
            server_class = _Server6 if ":" in host else _Server
            server = make_server(host, port, app, server_class, handler_class=_QuietHandler)
            threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
        self._server = server
        return server.server_port

    def stop(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Server6(_Server):
    address_family = socket.AF_INET6


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """One line per scrape would flood stderr."""


WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _basic_auth(app: WSGIApp, user: str, password: str) -> WSGIApp:
    expected = "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if hmac.compare_digest(environ.get("HTTP_AUTHORIZATION", "").encode(), expected.encode()):
            return app(environ, start_response)
        start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="iot-connector metrics"')])
        return [b"metrics need a user name and password (metrics.basic_auth)\n"]

    return guarded
