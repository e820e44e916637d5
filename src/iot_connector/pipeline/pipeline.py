"""Sources -> buffer (memory or durable spool) -> batcher -> sink, with retries, backoff and a breaker.

`emit` is the callback every source gets: it returns once the records are accepted (durable when the spool
is on), so a source that acknowledges upstream does so only after that. One sender task reads batches in
log order (size or time trigger), writes them to the sink, and commits the spool only after the sink
acknowledged: at-least-once, with `record_id` for de-duplication downstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any

from iot_connector.config.models import PipelineSettings
from iot_connector.metrics import Metrics
from iot_connector.model import Record, now_us
from iot_connector.pipeline.breaker import Backoff, CircuitBreaker
from iot_connector.pipeline.buffers import Buffer, MemoryBuffer, PutResult, SpoolBuffer
from iot_connector.pipeline.deadletters import DeadLetters
from iot_connector.pipeline.spool import Spool, SpoolWriteError
from iot_connector.pipeline.tracing import span, span_until
from iot_connector.sinks.base import Sink, SinkError

log = logging.getLogger(__name__)
_SOURCE_ID, _PROTOCOL = attrgetter("source_id"), attrgetter("protocol")
Delivered = Callable[[Sequence[Record]], None]


def _as_sink_error(exc: BaseException) -> SinkError:
    return exc if isinstance(exc, SinkError) else SinkError(str(exc), error_type=type(exc).__name__)


def _failed_future(exc: BaseException) -> asyncio.Future[None]:
    future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    future.set_exception(exc)
    return future


def _discard(future: asyncio.Future[None]) -> None:
    """Drop an ack we no longer wait for, without 'exception never retrieved' noise."""
    if future.done():
        if not future.cancelled():
            future.exception()
    else:
        future.cancel()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())


GC_GEN0_THRESHOLD = 50_000


def _fewer_gc_passes() -> None:
    """Raise the garbage collector's first threshold (Python's default: 700 allocations) for the process.

    Why: the agent allocates a Record per value, tens of thousands a second, none of them cyclic; with the
    default, the collector runs ~70 times per second and takes ~7 % of the CPU at 50,000 records/s (gen-2
    passes walk every record in flight). At 50,000 it runs about once a second (measured: 15.4 -> 13.2 µs
    of CPU per Modbus register end to end). Cyclic garbage is still collected, only in larger steps.
    """
    gen0, gen1, gen2 = gc.get_threshold()
    if 0 < gen0 < GC_GEN0_THRESHOLD:
        gc.set_threshold(GC_GEN0_THRESHOLD, gen1, gen2)


def make_buffer(settings: PipelineSettings, spool_dir: Path) -> Buffer:
    """The spool in `spool_dir` (the caller resolves `spool.directory`), or the memory queue if disabled."""
    sp = settings.spool
    if not sp.enabled:
        return MemoryBuffer(settings.memory_queue_records, settings.drop_policy)
    spool = Spool(
        spool_dir,
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
        tracer: Any | None = None,
        dead_letters: DeadLetters | None = None,
    ):
        self.settings = settings
        self.sink = sink
        self.buffer = buffer
        self.metrics = metrics or Metrics()
        self.on_delivered = on_delivered
        self.tracer = tracer  # an OpenTelemetry tracer (pipeline.tracing.make_tracer) or None: no spans
        self.dead_letters = dead_letters
        self.breaker = CircuitBreaker(settings.breaker.failure_threshold, settings.breaker.reset_timeout_s)
        r = settings.retry
        self.backoff = Backoff(r.initial_backoff_s, r.max_backoff_s, r.multiplier, r.jitter)
        self.last_error: str | None = None
        self.dropped = 0
        self._sink_open = False
        self._stopping = asyncio.Event()
        self._draining = False
        self._sender: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        # Batches sent and not yet acknowledged, oldest first: (records, spool token, ack, perf_counter when sent)
        self._inflight: deque[tuple[list[Record], object, asyncio.Future[None], float]] = deque()
        self._delivering_since: float | None = None  # a retried batch (`_deliver`) waiting for its ack
        self.ack_overdue = False
        self.sink_up = False  # as iot_sink_up: the last write acknowledged and no acknowledgement overdue

    def _set_sink_up(self, up: bool) -> None:
        self.sink_up = up
        self.metrics.sink_up.set(1 if up else 0)

    async def start(self) -> None:
        _fewer_gc_passes()
        await self.buffer.open()
        self._update_gauges()
        self._sender = asyncio.create_task(self._send_loop(), name="pipeline-sender")
        self._watchdog = asyncio.create_task(self._watch_acks(), name="pipeline-ack-watchdog")

    def reject(self, source: str, where: str, reason: str, payload: bytes | None) -> None:
        """A source's `on_reject`: a message that could not become records is counted and kept as a dead letter."""
        self.metrics.records_failed.labels(error_type="malformed_payload", source=source).inc()
        if self.dead_letters is not None:
            self.dead_letters.write(source, where, reason, payload)

    async def _watch_acks(self) -> None:
        """Sink health beyond refused connections: a batch unacknowledged for `sink_ack_timeout_s` (a hung
        service that keeps the connection open) sets iot_sink_up 0 until the next acknowledgement."""
        timeout = self.settings.sink_ack_timeout_s
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            since = self._inflight[0][3] if self._inflight else self._delivering_since
            if since is not None and time.perf_counter() - since > timeout and not self.ack_overdue:
                self.ack_overdue = True
                self._set_sink_up(False)
                waited = time.perf_counter() - since
                self.last_error = (
                    f"no acknowledgement from the sink for {waited:.0f} s (sink_ack_timeout_s {timeout:g})"
                )
                log.error("sink %s: %s", self.sink.name, self.last_error)

    async def emit(self, records: Sequence[Record]) -> None:
        """The sources' Emit callback: accepted (durably with the spool) when it returns; may block (backpressure)."""
        if not records:
            return
        deque(map(Record.finalize, records), maxlen=0)  # a C-level loop over the records
        for source, n in Tally(map(_SOURCE_ID, records)).items():
            self.metrics.records_read.labels(source=source).inc(n)
        try:
            with span(self.tracer, "iot.emit", source=records[0].source_id, records=len(records)):
                result = await self.buffer.put(records)
        except SpoolWriteError as exc:  # disk full / I/O error: refuse these records, keep the agent up
            self._count_failed("spool_write", records)
            log.error("%s; %d records refused", exc, len(records))
            result = PutResult(accepted=0, dropped_newest=len(records))
        if result.invalid:
            for source, n in Tally(source for source, _ in result.invalid).items():
                self.metrics.records_failed.labels(error_type="invalid_record", source=source).inc(n)
            log.error("%d records refused: %s", len(result.invalid), result.invalid[0][1])
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

    def _count_failed(self, error_type: str, records: Sequence[Record]) -> None:
        for source, n in Tally(map(_SOURCE_ID, records)).items():
            self.metrics.records_failed.labels(error_type=error_type, source=source).inc(n)

    def _update_gauges(self) -> None:
        self.metrics.queue_depth.set(self.buffer.depth)
        self.metrics.spool_bytes.set(self.buffer.size_bytes)

    async def _next_batch(self, fill: bool = True) -> tuple[list[Record], object] | None:
        """The next batch; with `fill`, wait up to `batch_max_wait_ms` for it to reach `batch_max_records`."""
        if not self.buffer.pending and not await self._wait_or_stop(self.buffer.wait_data(None)):
            return None
        deadline = time.monotonic() + self.settings.batch_max_wait_ms / 1000
        while (
            fill
            and self.buffer.pending < self.settings.batch_max_records
            and not (self._draining or self._stopping.is_set())
        ):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            await asyncio.sleep(min(left, 0.005))
        records, token = self.buffer.read(self.settings.batch_max_records)
        return (records, token) if records else None

    async def _wait_or_stop(self, awaitable: Awaitable[object]) -> bool:
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
        """Keep up to `max_inflight_batches` submitted (in log order) and commit their acks in order.

        A failed ack (or submit) sends everything that was in flight again, one batch at a time, in order,
        with retries; so the sink sees the log order even across failures (plus at-least-once re-sends).
        """
        inflight = self._inflight
        while True:
            failed: BaseException | None = None
            while len(inflight) < self.settings.max_inflight_batches:
                fill = True
                if inflight and self.buffer.pending < self.settings.batch_max_records:
                    # No full batch yet: wait for the oldest ack, but no longer than one batch window; records
                    # that waited that long go out as a partial batch (else a slow ack caps the throughput
                    # at one partial batch per round trip).
                    if await self._acked_within(inflight[0][2]):
                        break
                    if not self.buffer.pending:
                        continue  # nothing waiting yet: wait again for the ack or for data
                    fill = False
                if not inflight and self._stopping.is_set() and not self.buffer.pending:
                    return
                batch = await self._next_batch(fill)
                if batch is None:
                    break
                records, token = batch
                started = time.perf_counter()
                try:
                    ack = await self._submit(records)
                except Exception as exc:
                    inflight.append((records, token, _failed_future(exc), started))
                    break
                inflight.append((records, token, ack, started))
            if not inflight:
                if self._stopping.is_set():
                    return
                continue
            records, token, ack, started = inflight[0]
            try:
                await ack
            except Exception as exc:
                failed = exc
            if failed is None:
                inflight.popleft()
                self._succeeded(records, time.perf_counter() - started, attempt=0)
                self._committed(records, token)
                continue
            self._failed(_as_sink_error(failed), records, 0)
            redo = [(r, t) for r, t, _, _ in inflight]
            for _, _, other, _ in inflight:
                _discard(other)
            inflight.clear()
            for records, token in redo:
                if not await self._deliver(records, first_attempt=1):
                    return  # stopping while the sink is down: the records stay in the spool
                self._committed(records, token)

    async def _acked_within(self, ack: asyncio.Future[None]) -> bool:
        done, _ = await asyncio.wait({ack}, timeout=max(self.settings.batch_max_wait_ms / 1000, 0.001))
        return bool(done)

    async def _submit(self, records: list[Record]) -> asyncio.Future[None]:
        if not self._sink_open:
            await self.sink.open()
            self._sink_open = True
        ingest_ts = now_us()
        for record in records:
            record.ingest_ts = ingest_ts
        ack = asyncio.ensure_future(await self.sink.send(records))
        span_until(self.tracer, "iot.batch.send", ack, sink=self.sink.name, records=len(records))
        return ack

    def _committed(self, records: list[Record], token: object) -> None:
        with span(self.tracer, "iot.spool.commit", records=len(records)):
            self.buffer.commit(token)
        self._update_gauges()
        if self.on_delivered:
            self.on_delivered(records)

    def _succeeded(self, records: list[Record], seconds: float, attempt: int) -> None:
        self.metrics.batch_latency.observe(seconds)
        for protocol, n in Tally(map(_PROTOCOL, records)).items():
            self.metrics.records_written.labels(protocol=protocol).inc(n)
        self._set_sink_up(True)
        self.ack_overdue = False
        self.breaker.record_success()
        self.metrics.breaker_open.set(0)
        if self.last_error:
            log.info("sink recovered after %d failed attempts", attempt)
        self.last_error = None

    async def _deliver(self, records: list[Record], first_attempt: int = 0) -> bool:
        """Send one batch until acknowledged (retries with backoff, breaker); False if stopped first."""
        attempt = first_attempt
        while True:
            delay = self.breaker.wait_time() or (self.backoff.delay(attempt - 1) if attempt else 0)
            self.metrics.breaker_open.set(1 if self.breaker.state == "open" else 0)
            if delay > 0 and await self._wait_or_stop(asyncio.sleep(delay)) is False:
                return False
            started = self._delivering_since = time.perf_counter()
            try:
                await (await self._submit(records))
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failed(_as_sink_error(exc), records, attempt)
                attempt += 1
                continue
            finally:
                self._delivering_since = None
            self._succeeded(records, time.perf_counter() - started, attempt)
            return True

    def _failed(self, error: SinkError, records: Sequence[Record], attempt: int) -> None:
        self._count_failed(error.error_type, records)
        self._set_sink_up(False)
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
        if self._watchdog:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
        if self._sender:
            self._draining = True  # no more waiting for full batches
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
        if self.dead_letters is not None:
            self.dead_letters.close()
        if self._sink_open:
            with contextlib.suppress(Exception):
                await self.sink.close()
            self._sink_open = False

    async def _drained(self) -> None:
        while self.buffer.depth and self._sender and not self._sender.done():
            await asyncio.sleep(0.01)
