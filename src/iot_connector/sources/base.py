"""The interface every protocol source implements, and the registry that maps `type` to it.

CONTRACT written first so sources and the pipeline are built in parallel. Adding a protocol means adding one
sub-package that calls `register(...)`, like a Telegraf plugin.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from iot_connector.model import Record

log = logging.getLogger(__name__)

# Hands records to the pipeline. Returns once they are accepted (in memory or durable in the spool), so a
# source that acknowledges upstream (MQTT QoS 1/2) acks only after this returns. May block: backpressure.
Emit = Callable[[Sequence[Record]], Awaitable[None]]
# Told about one message/reading that cannot become records: (source name, where, reason, payload or None).
# The agent wires it to the pipeline (iot_records_failed_total{error_type="malformed_payload"}, dead letters).
Reject = Callable[[str, str, str, bytes | None], None]
REJECT_LOG_INTERVAL_S = 1.0  # a flood of bad messages logs one line a second per source, not one per message


class SourceConfig(BaseModel):
    """Base of every source's config model; `type` is the discriminator (opcua | mqtt | modbus)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$", description="unique connection name")
    type: str
    enabled: bool = True


@dataclass
class SourceHealth:
    connected: bool = False
    last_error: str | None = None
    last_record_at_us: int | None = None
    records_read: int = 0
    reconnects: int = 0
    rejected: int = 0  # messages/readings that could not become records (counted, logged, acknowledged)
    details: dict[str, str] = field(default_factory=dict)


class Source(abc.ABC):
    """A protocol connection. `run` reads until `stop`; it reconnects by itself and never raises for
    transient errors (it records them in `health`)."""

    protocol: str = ""

    def __init__(self, config: SourceConfig, emit: Emit):
        self.config = config
        self.emit = emit
        self.health = SourceHealth()
        self._stopped = asyncio.Event()
        self.on_reject: Reject | None = None
        self.state_dir: Path | None = None  # where a source may keep small state across restarts (agent sets it)
        self._reject_logged_at = 0.0
        self._reject_unlogged = 0

    def reject(self, where: str, reason: str, payload: bytes | None = None) -> None:
        """One message or reading that cannot become records (bad JSON, overflowing timestamp, short register
        read...): counted, logged and handed to `on_reject`; the caller acknowledges it like a delivered one
        and goes on, so it never blocks what follows (a redelivery could not fix it)."""
        self.health.rejected += 1
        self.health.details["rejected"] = str(self.health.rejected)
        self.health.last_error = f"rejected {where}: {reason}"
        now = time.monotonic()
        if now - self._reject_logged_at >= REJECT_LOG_INTERVAL_S:
            more = f" (and {self._reject_unlogged} more since the last line)" if self._reject_unlogged else ""
            log.warning("%s source %s: rejected %s: %s%s", self.protocol, self.config.name, where, reason, more)
            self._reject_logged_at, self._reject_unlogged = now, 0
        else:
            self._reject_unlogged += 1
        if self.on_reject is not None:
            self.on_reject(self.config.name, where, reason, payload)

    def _lost(self, exc: BaseException, delay: float, *, expected: bool = True) -> None:
        """Note why the connection ended in `health` and the log; an unexpected error (e.g. emit refused)
        gets its traceback, since it is a bug or a bad value, not the network."""
        self.health.last_error = f"{type(exc).__name__}: {exc}"
        if expected:
            log.warning("%s source %s: %s; reconnecting in %.1fs", self.protocol, self.config.name, exc, delay)
        else:
            log.exception("%s source %s: unexpected error; restarting in %.1fs", self.protocol, self.config.name, delay)

    async def _backoff(self, delay: float, max_delay: float) -> float:
        """Wait `delay` seconds (less if stopped meanwhile); the next delay, doubled up to `max_delay`."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), delay)
        return min(delay * 2, max_delay)

    @abc.abstractmethod
    async def run(self) -> None:
        """Connect, read and emit until stopped; reconnect with backoff on failures."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop reading and disconnect; `run` returns soon after."""

    async def test_connection(self) -> str:
        """Connect once and describe what was found (GUI "test connection"); raise with a clear message."""
        raise NotImplementedError


_REGISTRY: dict[str, tuple[type[SourceConfig], type[Source]]] = {}


def register(type_name: str, config_cls: type[SourceConfig], source_cls: type[Source]) -> None:
    _REGISTRY[type_name] = (config_cls, source_cls)


def registered() -> dict[str, tuple[type[SourceConfig], type[Source]]]:
    """Import the built-in protocol packages (each registers itself) and return the registry."""
    import importlib

    for name in ("opcua", "mqtt", "modbus"):
        try:
            importlib.import_module(f"iot_connector.sources.{name}")
        except ModuleNotFoundError as exc:  # a protocol whose package is not written/installed yet
            if not exc.name or not exc.name.startswith("iot_connector.sources"):
                raise
    return dict(_REGISTRY)
