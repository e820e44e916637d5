"""The agent as the GUI drives it: started in the GUI's event loop, re-configured live, observed.

Why here and not in `Agent`: the headless `run` command never changes its config. The GUI does: a source that
was added, edited or removed is started/stopped on its own while the others keep flowing; a change of the
sink, pipeline or metrics settings restarts the agent inside the process (the spool keeps what is queued).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from iot_connector.agent import Agent
from iot_connector.config import AgentConfig, ConfigError, apply_agent_proxy, load_config, parse_config, save_state
from iot_connector.metrics import Metrics
from iot_connector.sources.base import Source, SourceConfig, registered
from iot_connector.sources.opcua.certificates import renew_sources
from iot_connector.web.masking import changes

log = logging.getLogger(__name__)


def plain(value: Any) -> Any:
    """A model dump with secrets in clear text (only ever used server-side, to edit and re-validate)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    return value


def dump(config: AgentConfig) -> dict[str, Any]:
    data = plain(config.model_dump(mode="python", exclude_none=True))
    data["sources"] = [plain(s.model_dump(mode="python", exclude_none=True)) for s in config.sources]
    return data


LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}


class LogBuffer(logging.Handler):
    """The most recent log lines, numbered, for the Logs tab (live tail, filter, search, download)."""

    def __init__(self, size: int = 5000):
        super().__init__()
        self.lines: deque[dict[str, Any]] = deque(maxlen=size)
        self.seq = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.seq += 1
        self.lines.append(
            {
                "seq": self.seq,
                "ts": record.created,
                "level": record.levelname,
                "logger": record.name,
                "msg": record.getMessage(),
            }
        )

    def query(self, after: int = 0, level: str = "DEBUG", search: str = "") -> list[dict[str, Any]]:
        floor = LEVELS.get(level.upper(), 0)
        needle = search.lower()
        return [
            line
            for line in list(self.lines)
            if line["seq"] > after
            and LEVELS.get(line["level"], 0) >= floor
            and (not needle or needle in line["msg"].lower() or needle in line["logger"].lower())
        ]


def _metric_samples(metrics: Metrics) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in metrics.registry.collect():
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def _total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return sum(value for _labels, value in samples.get(name, []))


def _by_label(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, label: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for labels, value in samples.get(name, []):
        out[labels[label]] = out.get(labels[label], 0) + value
    return out


AUDIT_FILE = "audit.log"
RENEWAL_CHECK_S = 24 * 3600.0


def write_audit(config_dir: Path, user: str, client: str | None, action: str, what: Any) -> None:
    """Append one JSON line to the audit log (the caller passes no secret in `what`)."""
    entry = {
        "ts": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "user": user,
        "client": client,
        "action": action,
        "what": what,
    }
    with open(Path(config_dir) / AUDIT_FILE, "a") as fh:
        fh.write(json.dumps(entry, default=str) + "\n")


class Runtime:
    def __init__(self, config_dir: Path):
        self.config_dir = Path(config_dir)
        self.metrics = Metrics()
        self.config: AgentConfig | None = None
        self.config_error: str | None = None
        self.agent: Agent | None = None
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._renewals: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    # --- lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        try:
            self.config = load_config(self.config_dir)
        except ConfigError as exc:  # the GUI still starts, so the operator can fix it in the browser
            self.config_error = str(exc)
            log.error("%s", exc)
            return
        await self._start_agent()

    async def _start_agent(self) -> None:
        assert self.config is not None
        self._stop = asyncio.Event()
        apply_agent_proxy(self.config.proxy)
        await self.renew_certificates()  # before the sources connect, so they start with a valid certificate
        try:
            self.agent = Agent(self.config, self.config_dir, self.metrics)
        except Exception as exc:  # e.g. a sink that cannot be built: the GUI stays up to fix it
            self.agent, self.config_error = None, f"the agent cannot start: {type(exc).__name__}: {exc}"
            log.error("%s", self.config_error)
            return
        self._task = asyncio.create_task(self.agent.run(self._stop), name="agent")
        for _ in range(200):  # until `run` has started its tasks, so a live source change cannot race it
            if self.agent.started.is_set() or self._task.done():
                break
            await asyncio.sleep(0.05)
        self._renewals = asyncio.create_task(self._renew_daily(), name="certificate-renewal")

    # --- certificate renewal ---------------------------------------------------------------------------
    async def renew_certificates(self) -> dict[str, str]:
        """Renew the generated OPC-UA client certificates that are due; log, audit and restart their sources."""
        config = self.config
        rotation = config.security.certificate_auto_rotation if config is not None else None
        if config is None or rotation is None or not rotation.enabled:
            return {}
        renewed = await asyncio.to_thread(
            renew_sources, config.sources, rotation.renew_days_before_expiry, rotation.validity_days
        )
        for name, message in renewed.items():
            write_audit(self.config_dir, "agent", None, f"cert.renew {name}", {"message": message})
            cfg = next(s for s in config.sources if s.name == name)
            if self.agent is not None and any(s.config.name == name for s in self.agent.sources):
                await self._remove_source(name)
                self._add_source(cfg)
        return renewed

    async def _renew_daily(self) -> None:
        while True:
            await asyncio.sleep(RENEWAL_CHECK_S)
            try:
                async with self._lock:
                    await self.renew_certificates()
            except Exception:  # a renewal problem must never stop the agent
                log.exception("certificate renewal check failed; trying again in %.0f s", RENEWAL_CHECK_S)

    async def stop(self) -> None:
        if self._renewals is not None:
            self._renewals.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewals
            self._renewals = None
        if self.agent is None or self._task is None or self._stop is None:
            return
        self._stop.set()
        with contextlib.suppress(Exception):
            await self._task
        self.agent = None

    # --- configuration ---------------------------------------------------------------------------------
    def current(self) -> dict[str, Any]:
        return dump(self.config) if self.config is not None else {"sources": []}

    async def update(self, mutate: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any]:
        """Edit the current settings with `mutate`, validate (ConfigError), persist and bring the running agent
        to them; returns what changed (secrets redacted). One edit at a time: none overwrites another."""
        async with self._lock:
            new = parse_config(mutate(self.current()))
            old = self.config
            diff = changes(self.current(), dump(new))
            save_state(self.config_dir, new)
            self.config, self.config_error = new, None
            only_sources = old is not None and dump(old) | {"sources": []} == dump(new) | {"sources": []}
            if self.agent is not None and only_sources and not (self._task and self._task.done()):
                await self._apply_sources(old.sources, new.sources)  # type: ignore[union-attr]
            else:
                await self.stop()
                await self._start_agent()
            return diff

    async def _apply_sources(self, old: list[SourceConfig], new: list[SourceConfig]) -> None:
        before = {s.name: s for s in old}
        after = {s.name: s for s in new}
        for name, cfg in before.items():
            if after.get(name) != cfg:
                await self._remove_source(name)
        for name, cfg in after.items():
            if before.get(name) != cfg and cfg.enabled:
                self._add_source(cfg)

    async def _remove_source(self, name: str) -> None:
        assert self.agent is not None
        await self.agent.remove_source(name)

    def _add_source(self, cfg: SourceConfig) -> None:
        assert self.agent is not None
        try:
            self.agent.add_source(cfg)
        except Exception as exc:  # the GUI keeps the config (the user fixes it there); the others keep flowing
            log.error("source %s (%s) cannot be started: %s: %s", cfg.name, cfg.type, type(exc).__name__, exc)

    @staticmethod
    def make_source(cfg: SourceConfig) -> Source:
        async def discard(_records: object) -> None:
            return None

        return registered()[cfg.type][1](cfg, discard)

    # --- monitoring ------------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        samples = _metric_samples(self.metrics)
        buckets = [(labels["le"], value) for labels, value in samples.get("iot_batch_latency_seconds_bucket", [])]
        agent_status: dict[str, Any] = self.agent.status() if self.agent is not None else {"sources": {}}
        configured = self.config.sources if self.config is not None else []
        # read counts from the metrics, which outlive agent and source restarts: the total is their sum
        read = _by_label(samples, "iot_records_read_total", "source")
        sources = {
            s.name: {
                "type": s.type,
                "enabled": s.enabled,
                "connected": False,
                "records_read": 0,
                "rejected": 0,
                "last_error": None,
            }
            | agent_status["sources"].get(s.name, {})
            | {"records_read": int(read.get(s.name, 0))}
            for s in configured
        }
        running = self.agent is not None and self._task is not None and not self._task.done()
        if self.agent is not None and self._task is not None and self._task.done() and not self._task.cancelled():
            failure = self._task.exception()
            if failure is not None:
                self.config_error = f"the agent stopped: {type(failure).__name__}: {failure}"
        return {
            "running": running,
            "config_error": self.config_error,
            "sources": sources,
            "queue_depth": agent_status.get("queue_depth", 0),
            "spool_bytes": agent_status.get("spool_bytes", 0),
            "sink": agent_status.get("sink"),
            "records_read": sum(s["records_read"] for s in sources.values()),
            "records_written": _total(samples, "iot_records_written_total"),
            "records_failed": _total(samples, "iot_records_failed_total"),
            "records_failed_by_type": _by_label(samples, "iot_records_failed_total", "error_type"),
            "records_dropped": _total(samples, "iot_records_dropped_total"),
            "latency_buckets": buckets,
            "latency_count": _total(samples, "iot_batch_latency_seconds_count"),
            "latency_sum": _total(samples, "iot_batch_latency_seconds_sum"),
        }
