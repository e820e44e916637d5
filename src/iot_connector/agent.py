"""The running agent: enabled sources -> pipeline -> sink, metrics endpoint, supervised until stopped.

Why the supervision: a source's `run` is meant to reconnect by itself, but if one ever raises, the agent logs
it with the source's name, marks it disconnected and restarts it after a pause; one bad connection never
takes the others (or the spool) down. On stop, sources stop first, then the pipeline: with the spool on,
what was accepted is already durable and is sent on the next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import orjson

from iot_connector.config.models import AgentConfig, DeltaSinkSettings
from iot_connector.latest import LatestValues
from iot_connector.metrics import Metrics
from iot_connector.model import Record
from iot_connector.pipeline import Pipeline, make_buffer
from iot_connector.pipeline.deadletters import DeadLetters
from iot_connector.pipeline.tracing import make_tracer
from iot_connector.sinks.base import Sink
from iot_connector.sources.base import Emit, Source, SourceConfig, registered
from iot_connector.wording import plural

log = logging.getLogger(__name__)
SOURCE_RESTART_S = 5.0


class JsonFormatter(logging.Formatter):
    """One JSON object per line: easy to ship from a container to any log system."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info or record.exc_text:  # exc_text: already formatted (and redacted) by logs.RedactingFilter
            entry["exc"] = record.exc_text or self.formatException(record.exc_info)  # type: ignore[arg-type]
        return orjson.dumps(entry).decode()


def setup_logging(level: str = "INFO", overrides: Mapping[str, str] | None = None) -> None:
    """JSON lines on stderr, secrets redacted; libraries at WARNING unless `overrides` names them (logs.py)."""
    import time

    from iot_connector.logs import RedactingFilter, apply_log_levels

    handler = logging.StreamHandler(sys.stderr)
    formatter = JsonFormatter()
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    apply_log_levels(level, overrides)


def build_sink(config: AgentConfig, config_dir: Path, metrics: Metrics | None = None) -> Sink:
    """Relative paths in the config are relative to the config directory (absolute ones win: `/` joins)."""
    settings = config.sink
    if isinstance(settings, DeltaSinkSettings):
        from iot_connector.sinks.delta import DeltaSink

        path = Path(config_dir) / (settings.path or Path("data") / "iot_records")
        return DeltaSink(path, config.agent_id, settings, metrics)
    from iot_connector.sinks.zerobus import ZerobusSink

    return ZerobusSink(settings, config.agent_id)


class Agent:
    def __init__(self, config: AgentConfig, config_dir: Path, metrics: Metrics | None = None):
        self.config = config
        self.config_dir = Path(config_dir)
        self.metrics = metrics or Metrics()
        self.sink = build_sink(config, self.config_dir, self.metrics)
        self.spool_dir = spool_dir = self.config_dir / (config.pipeline.spool.directory or "spool")
        buffer = make_buffer(config.pipeline, spool_dir)
        max_dead = config.pipeline.dead_letters_max_bytes
        self.pipeline = Pipeline(
            config.pipeline,
            self.sink,
            buffer,
            self.metrics,
            tracer=make_tracer(config.tracing),
            dead_letters=DeadLetters(spool_dir, max_dead) if max_dead else None,
        )
        self.sources: list[Source] = []
        self.latest: dict[str, LatestValues] = {}  # source name -> its tags' last values (the GUI's tag view)
        self.not_created: dict[str, str] = {}  # source name -> why it could not be created (shown in status)
        for cfg in config.sources:
            if not cfg.enabled:
                continue
            try:
                self.sources.append(self.create_source(cfg))
            except Exception as exc:  # one bad connection must not keep the others from starting
                self.metrics.connection_status.labels(source=cfg.name).set(0)
                self.not_created[cfg.name] = f"cannot be created: {type(exc).__name__}: {exc}"
                log.error(
                    "source %s (%s) cannot be created, skipped: %s: %s", cfg.name, cfg.type, type(exc).__name__, exc
                )
        self.metrics_port: int | None = None
        self.started = asyncio.Event()  # set once `run` has started the sources (add/remove_source need it)
        self._source_tasks: dict[str, asyncio.Task[None]] = {}
        self._status_task: asyncio.Task[None] | None = None
        self._counted: dict[str, tuple[int, int]] = {}  # (reconnects, attempts) already added to the counters

    def create_source(self, cfg: SourceConfig) -> Source:
        """A source wired to this agent's pipeline: records to `emit`, rejected messages to `reject`, its
        state (MQTT arrival numbers behind record_id) beside the spool."""
        table = LatestValues()
        source = registered()[cfg.type][1](cfg, self._emitter(table))
        self.latest[cfg.name] = table
        source.on_reject = self.pipeline.reject
        source.state_dir = self.spool_dir / "sources"
        return source

    def _emitter(self, table: LatestValues) -> Emit:
        """The pipeline's emit, noting each accepted record's value in `table` on the way."""
        emit = self.pipeline.emit

        async def emit_and_note(records: Sequence[Record]) -> None:
            await emit(records)
            table.observe(records)

        return emit_and_note

    async def run(self, stop: asyncio.Event) -> None:
        """Run until `stop` is set, then shut down in order."""
        m = self.config.metrics
        if m.enabled:
            try:
                auth = (m.basic_auth.username, m.basic_auth.password.get_secret_value()) if m.basic_auth else None
                self.metrics_port = self.metrics.serve(m.port, m.host, auth)
                log.info("metrics on http://%s:%d/metrics", m.host, self.metrics_port)
            except OSError as exc:  # data flow matters more than metrics: run on, say what to change
                log.error(
                    "metrics endpoint %s:%d unavailable (%s); set metrics.port to a free port", m.host, m.port, exc
                )
        await self.pipeline.start()
        log.info(
            "agent %s started: %s, sink %s, spool %s",
            self.config.agent_id,
            plural(len(self.sources), "source"),
            self.sink.name,
            "on" if self.config.pipeline.spool.enabled else "off",
        )
        self._source_tasks = {s.config.name: self._start(s) for s in self.sources}
        self._status_task = asyncio.create_task(self._status_loop(), name="status")
        self.started.set()
        try:
            await stop.wait()
        finally:
            await self.shutdown()

    def _start(self, source: Source) -> asyncio.Task[None]:
        return asyncio.create_task(self._supervise(source), name=f"source-{source.config.name}")

    def add_source(self, cfg: SourceConfig) -> Source:
        """Create a source from `cfg` and start it beside the running ones (the GUI adds or edits a
        connection). Raises ValueError for a name already running, or what the source's constructor raises."""
        if not self.started.is_set():
            raise RuntimeError("the agent is not running: add sources to its config instead")
        if cfg.name in self._source_tasks:
            raise ValueError(f"source {cfg.name} is already running; remove it first")
        try:
            source = self.create_source(cfg)
        except Exception as exc:
            self.not_created[cfg.name] = f"cannot be created: {type(exc).__name__}: {exc}"
            raise
        self.not_created.pop(cfg.name, None)
        self.sources.append(source)
        self._source_tasks[cfg.name] = self._start(source)
        log.info("source %s (%s) started", cfg.name, cfg.type)
        return source

    async def remove_source(self, name: str) -> bool:
        """Stop the source `name` (what it read is handed over first) and forget it, its task and its
        metrics; the others keep flowing. False if no such source runs."""
        source = next((s for s in self.sources if s.config.name == name), None)
        task = self._source_tasks.pop(name, None)
        if source is None and task is None:
            return self.not_created.pop(name, None) is not None
        if source is not None:
            try:
                await asyncio.wait_for(source.stop(), 5)
            except Exception as exc:
                log.warning("source %s did not stop cleanly: %s", name, exc)
            self.sources.remove(source)
        if task is not None:
            with contextlib.suppress(asyncio.TimeoutError):  # run() returns soon after stop(); then cancel
                await asyncio.wait_for(asyncio.shield(task), 5)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for gauge in (self.metrics.connection_status, self.metrics.source_reconnects, self.metrics.source_attempts):
            with contextlib.suppress(KeyError):
                gauge.remove(name)
        self._counted.pop(name, None)
        self.latest.pop(name, None)
        log.info("source %s stopped and removed", name)
        return True

    def status(self) -> dict[str, object]:
        """A snapshot for the GUI / health checks: sources, buffer and sink state (no secrets)."""
        pipe = self.pipeline
        return {
            "agent_id": self.config.agent_id,
            "sources": {
                s.config.name: {
                    "type": s.config.type,
                    "connected": s.health.connected,
                    "last_error": s.health.last_error,
                    "records_read": s.health.records_read,
                    "reconnects": s.health.reconnects,
                    "connect_attempts": s.health.connect_attempts,
                    "rejected": s.health.rejected,
                }
                for s in self.sources
            }
            | {name: {"connected": False, "last_error": error} for name, error in self.not_created.items()},
            "queue_depth": pipe.buffer.depth,
            "spool_bytes": pipe.buffer.size_bytes,
            "dropped": pipe.dropped,
            "sink": {
                "type": self.sink.name,
                "up": pipe.sink_up,
                "last_error": pipe.last_error,
                "breaker": pipe.breaker.state,
            },
        }

    async def _supervise(self, source: Source) -> None:
        name = source.config.name
        while True:
            try:
                await source.run()
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                source.health.connected = False
                source.health.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("source %s crashed; restarting in %.0f s", name, SOURCE_RESTART_S)
                await asyncio.sleep(SOURCE_RESTART_S)

    async def _status_loop(self) -> None:
        while True:
            for source in self.sources:
                name, health = source.config.name, source.health
                self.metrics.connection_status.labels(source=name).set(1 if health.connected else 0)
                reconnects, attempts = self._counted.get(name, (0, 0))
                self.metrics.source_reconnects.labels(source=name).inc(health.reconnects - reconnects)
                self.metrics.source_attempts.labels(source=name).inc(health.connect_attempts - attempts)
                self._counted[name] = (health.reconnects, health.connect_attempts)
            self.metrics.queue_depth.set(self.pipeline.buffer.depth)
            self.metrics.spool_bytes.set(self.pipeline.buffer.size_bytes)
            await asyncio.sleep(1.0)

    async def shutdown(self) -> None:
        log.info("stopping: sources first, then the pipeline")
        self.started.clear()
        for source in self.sources:
            try:
                await asyncio.wait_for(source.stop(), 5)
            except Exception as exc:
                log.warning("source %s did not stop cleanly: %s", source.config.name, exc)
        tasks = [*self._source_tasks.values(), *([self._status_task] if self._status_task else [])]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._source_tasks.clear()
        await self.pipeline.stop()
        self.metrics.stop()
        log.info("stopped; %s left in the buffer for the next start", plural(self.pipeline.buffer.depth, "record"))
