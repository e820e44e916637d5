"""Batches cut from the buffer in log order: size and time triggers woken by the buffer, drain on stop.

Why the window adapts to load: a fixed window (`batch_max_wait_ms`) is latency every record pays at a low
rate and buys nothing there. So a batch leaves at once when the sink has nothing in flight (`take`); while
it has, records gather (`gather`) until a full batch is pending, the oldest acknowledgement returns, or
the window ends. Under load the batches therefore grow to `batch_max_records` by themselves, and when the
sink is idle a record waits for no timer at all.

A sink whose every write is a commit (Delta) would then commit once per round trip even at a trickle: the
pipeline gives it the window (`Sink.pace`) to space its commits by.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from typing import Any, NamedTuple

from iot_connector.model import Record
from iot_connector.pipeline.buffers import Buffer


class Batch(NamedTuple):
    records: list[Record]
    token: Any  # the buffer's commit token for these records


class Batcher:
    def __init__(self, buffer: Buffer, max_records: int, max_wait_s: float):
        self.buffer = buffer
        self.max_records = max_records
        self.max_wait_s = max_wait_s
        self.draining = False  # stop was asked: no more waiting for fuller batches
        self._stop: asyncio.Future[None] | None = None

    @property
    def stopped(self) -> bool:
        return self._stop is not None and self._stop.done()

    def _stop_future(self) -> asyncio.Future[None]:
        if self._stop is None:
            self._stop = asyncio.get_running_loop().create_future()
        return self._stop

    def drain(self) -> None:
        """Send what is pending without waiting for full batches (the first step of stopping)."""
        self.draining = True
        self.buffer.wake()

    def stop(self) -> None:
        """End every wait: `wait_data` and `until_stopped` return False from now on."""
        self.drain()
        stop = self._stop_future()
        if not stop.done():
            stop.set_result(None)

    def take(self) -> Batch | None:
        """Up to a full batch of what is pending now, or None."""
        records, token = self.buffer.read(self.max_records)
        return Batch(records, token) if records else None

    async def wait_data(self) -> bool:
        """Until some record is pending (True) or stop (False)."""
        while not self.buffer.pending:
            if self.stopped:
                return False
            await asyncio.wait({self.buffer.arrival(), self._stop_future()}, return_when=asyncio.FIRST_COMPLETED)
        return True

    async def gather(self, ack: asyncio.Future[None]) -> bool:
        """While a batch is in flight: wait until a full batch is pending (while draining: any record), `ack`
        (the oldest in flight) is done, or the window (from now) ends. True when the ack came first: commit
        it before sending more."""
        deadline = time.monotonic() + self.max_wait_s
        buffer = self.buffer
        while True:
            if ack.done():
                return True
            if buffer.pending >= self.max_records or (self.draining and buffer.pending):
                return False
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            await asyncio.wait({buffer.arrival(), ack}, timeout=left, return_when=asyncio.FIRST_COMPLETED)

    async def until_stopped(self, awaitable: Awaitable[None]) -> bool:
        """Await `awaitable` unless stop comes first (it is then cancelled); True when it completed."""
        task = asyncio.ensure_future(awaitable)
        await asyncio.wait({task, self._stop_future()}, return_when=asyncio.FIRST_COMPLETED)
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            return False
        return not task.cancelled()
