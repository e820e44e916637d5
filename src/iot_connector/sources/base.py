"""The interface every protocol source implements, and the registry that maps `type` to it.

CONTRACT written first so sources and the pipeline are built in parallel. Adding a protocol means adding one
sub-package that calls `register(...)`, like a Telegraf plugin.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from iot_connector.model import Record

log = logging.getLogger(__name__)

# Hands records to the pipeline. Returns once they are accepted (in memory or durable in the spool), so a
# source that acknowledges upstream (MQTT QoS 1/2) acks only after this returns. May block: backpressure.
Emit = Callable[[Sequence[Record]], Awaitable[None]]
# Told about one message/reading that cannot become records: (source name, where, reason, payload or None).
# The agent wires it to the pipeline (iot_records_failed_total{error_type="malformed_payload"}, dead letters).
Reject = Callable[[str, str, str, bytes | None], None]
PROBE_TIMEOUT_S = 2.0  # a TCP connect to a reachable peer answers well within this
REPEAT_LOG_INTERVAL_S = 60.0  # the same connection error is logged at WARNING once a minute, else at DEBUG
REJECT_LOG_INTERVAL_S = 1.0  # a flood of bad messages logs one line a second per source, not one per message


class PartialSuccess(str):
    """What `test_connection` returns when the peer answered but not everything is well (e.g. an OPC-UA node
    without a good value): the GUI shows it as a warning, not as success."""


class SourceConfig(BaseModel):
    """Base of every source's config model; `type` is the discriminator (opcua | mqtt | modbus)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, pattern=r"^[A-Za-z0-9_.\-]+$", description="unique connection name")
    type: str
    enabled: bool = True
    reconnect_min_delay_s: float = Field(0.25, gt=0, description="first wait after a lost connection")
    reconnect_max_delay_s: float = Field(
        2.0, gt=0, le=300, description="cap of the doubling, jittered wait between attempts (data resumes this soon)"
    )

    @model_validator(mode="after")
    def _reconnect_delays(self) -> Self:
        if self.reconnect_max_delay_s < self.reconnect_min_delay_s:
            raise ValueError(
                f"reconnect_max_delay_s {self.reconnect_max_delay_s} must be >= reconnect_min_delay_s "
                f"{self.reconnect_min_delay_s}"
            )
        return self


@dataclass
class SourceHealth:
    connected: bool = False
    last_error: str | None = None
    last_record_at_us: int | None = None
    records_read: int = 0
    reconnects: int = 0  # successful reconnects: sessions established again after one was lost
    connect_attempts: int = 0  # sessions tried (first connect and every retry), successful or not
    rejected: int = 0  # messages/readings that could not become records (counted, logged, acknowledged)
    details: dict[str, str] = field(default_factory=dict)


class ReconnectBackoff:
    """Waits between connection attempts: doubling from `min_s`, capped at `max_s`, each drawn at random from
    the upper half of its step ("equal jitter"), so many agents restarting with one server do not knock in
    step, yet none waits longer than the cap once the peer is back."""

    def __init__(self, min_s: float, max_s: float):
        self.min_s, self.max_s = min_s, max_s
        self.attempt = 0

    def next(self) -> float:
        step = min(self.max_s, self.min_s * 2 ** min(self.attempt, 32))
        self.attempt += 1
        return random.uniform(step / 2, step)

    def reset(self) -> None:
        self.attempt = 0


async def probe(address: tuple[str, int]) -> None:
    """Open and close a TCP connection to `address` (a SYN and a close, no session): raises OSError or
    asyncio.TimeoutError (after PROBE_TIMEOUT_S) if nothing accepts it."""
    _, writer = await asyncio.wait_for(asyncio.open_connection(*address), PROBE_TIMEOUT_S)
    writer.close()
    with contextlib.suppress(Exception):
        await writer.wait_closed()


class Source(abc.ABC):
    """A protocol connection. The one reconnect loop lives here (`run`): it calls the protocol's `session`,
    and when that ends by an error it waits (`ReconnectBackoff`), probes the peer's TCP port cheaply until it
    answers, and calls `session` again. `run` never raises for transient errors; it records them in
    `health`. A protocol implements `session` and calls `established()` once data can flow."""

    protocol: str = ""
    # errors that mean "the peer or the network", logged without a traceback; others are bugs or bad values
    transient_errors: tuple[type[BaseException], ...] = (OSError, asyncio.TimeoutError, ConnectionError)

    def __init__(self, config: SourceConfig, emit: Emit):
        self.config = config
        self.emit = emit
        self.health = SourceHealth()
        self._stopped = asyncio.Event()
        self.on_reject: Reject | None = None
        self.state_dir: Path | None = None  # where a source may keep small state across restarts (agent sets it)
        self._reject_logged_at = 0.0
        self._reject_unlogged = 0
        self._backoff = ReconnectBackoff(config.reconnect_min_delay_s, config.reconnect_max_delay_s)
        self._was_established = False
        self._lost_error, self._lost_logged_at = "", 0.0  # the last loss logged at WARNING, and when

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

    # --- the reconnect loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Call `session` until stopped; after each failure wait, probe, and call it again."""
        while not self._stopped.is_set():
            self.health.connect_attempts += 1
            try:
                await self.session()
            except Exception as exc:  # e.g. emit refused: never let one failure end the source
                delay = self._backoff.next()
                self._lost(exc, delay, expected=isinstance(exc, self.transient_errors))
            else:
                delay = self._backoff.next()  # a session that ended without error and without stop: retry too
            finally:
                self.health.connected = False
            if not self._stopped.is_set():
                await self._wait(delay)
                await self._until_reachable()

    @abc.abstractmethod
    async def session(self) -> None:
        """One connection: connect, call `established()` once data can flow, read and emit until stopped;
        raise when the connection fails (the loop in `run` reconnects). Close what it opened before returning."""

    def established(self) -> None:
        """The session is up: `connected`, errors cleared, backoff back to its start; after a lost session
        this counts one successful reconnect (`health.reconnects`)."""
        if self._was_established and not self.health.connected:
            self.health.reconnects += 1
            log.info("%s source %s: reconnected", self.protocol, self.config.name)
        self._was_established = True
        self.health.connected, self.health.last_error = True, None
        self._backoff.reset()

    def probe_address(self) -> tuple[str, int] | None:
        """The peer's TCP (host, port) to probe before a new session, or None (e.g. a serial line)."""
        return None

    async def _until_reachable(self) -> None:
        """Probe the peer's TCP port until it accepts (a SYN and a close, instead of a whole session with its
        handshakes, certificates and log lines), waiting the backoff between probes."""
        address = self.probe_address()
        while address is not None and not self._stopped.is_set():
            try:
                await probe(address)
            except (OSError, asyncio.TimeoutError) as exc:
                delay = self._backoff.next()
                self.health.last_error = f"{address[0]}:{address[1]} unreachable: {type(exc).__name__}: {exc}"
                log.debug(
                    "%s source %s: %s; probing again in %.2fs",
                    self.protocol,
                    self.config.name,
                    self.health.last_error,
                    delay,
                )
                await self._wait(delay)
                continue
            return

    def _lost(self, exc: BaseException, delay: float, *, expected: bool = True) -> None:
        """Note why the connection ended in `health` and the log; an unexpected error (e.g. emit refused)
        gets its traceback, since it is a bug or a bad value, not the network."""
        self.health.last_error = error = f"{type(exc).__name__}: {exc}"
        now = time.monotonic()
        if expected and error == self._lost_error and now - self._lost_logged_at < REPEAT_LOG_INTERVAL_S:
            log.debug("%s source %s: %s; reconnecting in %.2fs", self.protocol, self.config.name, exc, delay)
        elif expected:  # a lasting refusal (bad certificate, password) is retried every few seconds: log it less
            log.warning("%s source %s: %s; reconnecting in %.2fs", self.protocol, self.config.name, exc, delay)
            self._lost_error, self._lost_logged_at = error, now
        else:
            log.exception("%s source %s: unexpected error; restarting in %.2fs", self.protocol, self.config.name, delay)

    async def _wait(self, delay: float) -> None:
        """Sleep `delay` seconds, less if stopped meanwhile."""
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._stopped.wait(), delay)

    async def stop(self) -> None:
        """Stop reading and disconnect; `run` returns soon after."""
        self._stopped.set()

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
