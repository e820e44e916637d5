"""Prometheus metrics of the edge agent, with the deployment guide's names (one registry per agent).

A private CollectorRegistry (not the global one) so tests and the benchmark can run several agents in one
process; `serve()` exposes it on :9090 by default.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

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
        self.breaker_open = Gauge("iot_circuit_breaker_open", "1 while the sink circuit breaker is open", registry=r)

    def serve(self, port: int, host: str = "0.0.0.0") -> int:
        """Start the /metrics HTTP endpoint in a daemon thread; returns the bound port (port 0 = any free)."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return server.server_port

    def stop(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()
