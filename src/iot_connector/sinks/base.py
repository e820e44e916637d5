"""What the pipeline needs from a sink: write a batch and return only once it is durably acknowledged."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Awaitable, Sequence

from iot_connector.model import Record


class SinkError(Exception):
    """A failed write. `retriable=False` means retrying as-is cannot succeed (auth, missing table, schema):
    the pipeline keeps the records in the spool and reports the error; the user has to fix the config."""

    def __init__(self, message: str, *, error_type: str, retriable: bool = True):
        super().__init__(message)
        self.error_type = error_type
        self.retriable = retriable


class Sink(abc.ABC):
    name: str = "sink"

    def pace(self, interval_s: float, full_rows: int) -> None:
        """The pipeline's batch window and batch size, given once. A sink whose every write is a commit
        (costly: CPU, a file) starts at most one per `interval_s` unless `full_rows` are waiting; the
        pipeline sends whenever the sink is idle, which would otherwise mean a commit per round trip."""
        return None

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect / create the table. May raise SinkError; the pipeline retries it like a write."""

    @abc.abstractmethod
    async def write(self, records: Sequence[Record]) -> None:
        """Deliver the batch; return only after the destination acknowledged it durably."""

    async def send(self, records: Sequence[Record]) -> Awaitable[None]:
        """Submit the batch and return an awaitable of its acknowledgement, so the pipeline can keep several
        batches in flight. Called in log order; the default writes synchronously (one batch at a time)."""
        await self.write(records)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    @abc.abstractmethod
    async def close(self) -> None: ...
