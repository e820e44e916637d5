"""The interface every protocol source implements, and the registry that maps `type` to it.

CONTRACT written first so sources and the pipeline are built in parallel. Adding a protocol means adding one
sub-package that calls `register(...)`, like a Telegraf plugin.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from iot_connector.model import Record

# Hands records to the pipeline. Returns once they are accepted (in memory or durable in the spool), so a
# source that acknowledges upstream (MQTT QoS 1/2) acks only after this returns. May block: backpressure.
Emit = Callable[[Sequence[Record]], Awaitable[None]]


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
    details: dict[str, str] = field(default_factory=dict)


class Source(abc.ABC):
    """A protocol connection. `run` reads until `stop`; it reconnects by itself and never raises for
    transient errors (it records them in `health`)."""

    protocol: str = ""

    def __init__(self, config: SourceConfig, emit: Emit):
        self.config = config
        self.emit = emit
        self.health = SourceHealth()

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
