"""Sources -> buffer (memory or durable spool) -> batcher -> sink, with retries, backoff and a breaker.

`emit` is the callback every source gets: it returns once the records are accepted (durable when the spool
is on), so a source that acknowledges upstream does so only after that. One sender task reads batches in
log order (size or time trigger), writes them to the sink, and commits the spool only after the sink
acknowledged: at-least-once, with `record_id` for de-duplication downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter as Tally
from collections.abc import Callable, Sequence
from pathlib import Path

from iot_connector.config.models import PipelineSettings
from iot_connector.metrics import Metrics
from iot_connector.model import Record, now_us
from iot_connector.pipeline.breaker import Backoff, CircuitBreaker
from iot_connector.pipeline.buffers import Buffer, MemoryBuffer, SpoolBuffer
from iot_connector.pipeline.spool import Spool
from iot_connector.sinks.base import Sink, SinkError

log = logging.getLogger(__name__)
Delivered = Callable[[Sequence[Record]], None]


def make_buffer(settings: PipelineSettings, spool_dir: Path) -> Buffer:
    sp = settings.spool
    if not sp.enabled:
        return MemoryBuffer(settings.memory_queue_records, settings.drop_policy)
    spool = Spool(
        sp.directory or spool_dir,
        max_bytes=sp.max_bytes,
        segment_bytes=sp.segment_bytes,
        durability=sp.durability,
        fsync_interval_ms=sp.fsync_interval_ms,
        memory_records=sp.memory_records,
    )
    return SpoolBuffer(spool, settings.drop_policy)


class Pipeline:
    def __init__(
        self,
        settings: PipelineSettings,
        sink: Sink,
        buffer: Buffer,
        metrics: Metrics | None = None,
        on_delivered: Delivered | None = None,
    ):
        self.settings = settings
        self.sink = sink
        self.buffer = buffer
        self.metrics = metrics or Metrics()
        self.on_delivered = on_delivered
        self.breaker = CircuitBreaker(settings.breaker.failure_threshold, settings.breaker.reset_timeout_s)
        r = settings.retry
        self.backoff = Backoff(r.initial_backoff_s, r.max_backoff_s, r.multiplier, r.jitter)
        self.last_error: str | None = None
        self.dropped = 0
        self._sink_open = False
        self._stopping = asyncio.Event()
        self._sender: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.buffer.open()
        self._update_gauges()
        self._sender = asyncio.create_task(self._send_loop(), name="pipeline-sender")

    async def emit(self, records: Sequence[Record]) -> None:
        """The sources' Emit callback: accepted (durably with the spool) when it returns; may block (backpressure)."""
        if not records:
            return
        for record in records:
            record.finalize()
        for source, n in Tally(r.source_id for r in records).items():
            self.metrics.records_read.labels(source=source).inc(n)
        result = await self.buffer.put(records)
        if result.dropped_newest or result.dropped_oldest:
            self.dropped += result.dropped_newest + result.dropped_oldest
            if result.dropped_newest:
                self.metrics.records_dropped.labels(policy="newest").inc(result.dropped_newest)
            if result.dropped_oldest:
                self.metrics.records_dropped.labels(policy="oldest").inc(result.dropped_oldest)
            log.warning(
                "buffer full: dropped %d newest and %d oldest records (drop_policy=%s)",
                result.dropped_newest,
                result.dropped_oldest,
                self.settings.drop_policy,
            )
        self._update_gauges()

    def _update_gauges(self) -> None:
        self.metrics.queue_depth.set(self.buffer.depth)
        self.metrics.spool_bytes.set(self.buffer.size_bytes)

    async def _next_batch(self) -> tuple[list[Record], object] | None:
        if not self.buffer.pending and not await self._wait_or_stop(self.buffer.wait_data(None)):
            return None
        deadline = time.monotonic() + self.settings.batch_max_wait_ms / 1000
        while self.buffer.pending < self.settings.batch_max_records and not self._stopping.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(min(left, 0.005))
        records, token = self.buffer.read(self.settings.batch_max_records)
        return (records, token) if records else None

    async def _wait_or_stop(self, awaitable) -> bool:
        """Await `awaitable` unless stop is requested first; True when it completed."""
        task = asyncio.ensure_future(awaitable)
        stop = asyncio.ensure_future(self._stopping.wait())
        done, _ = await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        for t in (task, stop):
            if t not in done:
                t.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        return task in done and not task.cancelled()

    async def _send_loop(self) -> None:
        while not self._stopping.is_set() or self.buffer.pending:
            batch = await self._next_batch()
            if batch is None:
                if self._stopping.is_set():
                    return
                continue
            records, token = batch
            if not await self._deliver(records):
                return  # stopping while the sink is down: the records stay in the spool
            self.buffer.commit(token)
            self._update_gauges()
            if self.on_delivered:
                self.on_delivered(records)

    async def _deliver(self, records: list[Record]) -> bool:
        """Write until acknowledged (retries with backoff, breaker); False if stopped first."""
        attempt = 0
        while True:
            wait = self.breaker.wait_time()
            self.metrics.breaker_open.set(1 if wait > 0 else 0)
            if wait > 0 and await self._wait_or_stop(asyncio.sleep(wait)) is False:
                return False
            try:
                started = time.perf_counter()
                if not self._sink_open:
                    await self.sink.open()
                    self._sink_open = True
                ingest_ts = now_us()
                for record in records:
                    record.ingest_ts = ingest_ts
                await self.sink.write(records)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = exc if isinstance(exc, SinkError) else SinkError(str(exc), error_type=type(exc).__name__)
                self._failed(error, len(records), attempt)
            else:
                self.metrics.batch_latency.observe(time.perf_counter() - started)
                for protocol, n in Tally(r.protocol for r in records).items():
                    self.metrics.records_written.labels(protocol=protocol).inc(n)
                self.metrics.sink_up.set(1)
                self.breaker.record_success()
                self.metrics.breaker_open.set(0)
                if self.last_error:
                    log.info("sink recovered after %d failed attempts", attempt)
                self.last_error = None
                return True
            if await self._wait_or_stop(asyncio.sleep(self.backoff.delay(attempt))) is False:
                return False
            attempt += 1

    def _failed(self, error: SinkError, n: int, attempt: int) -> None:
        self.metrics.records_failed.labels(error_type=error.error_type).inc(n)
        self.metrics.sink_up.set(0)
        self.breaker.record_failure()
        message = str(error)
        if not error.retriable:
            self._sink_open = False
        if message != self.last_error:
            level = logging.ERROR if not error.retriable else logging.WARNING
            hint = " (not retriable: fix the sink settings; records stay in the spool)" if not error.retriable else ""
            log.log(
                level,
                "sink %s failed (%s, attempt %d): %s%s",
                self.sink.name,
                error.error_type,
                attempt + 1,
                message,
                hint,
            )
        self.last_error = message

    async def stop(self, drain_timeout_s: float | None = None) -> None:
        """Stop after sending what is queued, for at most `drain_timeout_s`; the rest stays in the spool."""
        timeout = self.settings.drain_timeout_s if drain_timeout_s is None else drain_timeout_s
        if self._sender:
            if not self.buffer.durable and self.buffer.depth and timeout > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._drained(), timeout)
            self._stopping.set()
            try:
                await asyncio.wait_for(self._sender, max(timeout, 1.0))
            except asyncio.TimeoutError:
                self._sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._sender
        await self.buffer.close()
        if self._sink_open:
            with contextlib.suppress(Exception):
                await self.sink.close()
            self._sink_open = False

    async def _drained(self) -> None:
        while self.buffer.depth and self._sender and not self._sender.done():
            await asyncio.sleep(0.01)
