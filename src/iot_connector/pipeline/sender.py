"""Batches to the sink and acknowledgements back, in log order: in-flight acks, retries, breaker, sink health.

Up to `max_inflight_batches` are submitted before the oldest is acknowledged; acks are committed strictly
in order. A failed ack (or submit) sends everything that was in flight again, one batch at a time, in
order, with backoff and the circuit breaker: the sink sees the log order even across failures (plus
at-least-once re-sends, de-duplicated downstream by `record_id`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter as Tally
from collections import deque
from collections.abc import Callable, Sequence
from operator import attrgetter
from typing import Any, NamedTuple

from iot_connector.config.models import PipelineSettings
from iot_connector.metrics import Metrics
from iot_connector.model import Record, now_us
from iot_connector.pipeline.batcher import Batch, Batcher
from iot_connector.pipeline.breaker import Backoff, CircuitBreaker
from iot_connector.pipeline.tracing import span_until
from iot_connector.sinks.base import Sink, SinkError

log = logging.getLogger(__name__)
_SOURCE_ID, _PROTOCOL = attrgetter("source_id"), attrgetter("protocol")
Committed = Callable[[Batch], None]


def count_failed(metrics: Metrics, error_type: str, records: Sequence[Record]) -> None:
    for source, n in Tally(map(_SOURCE_ID, records)).items():
        metrics.records_failed.labels(error_type=error_type, source=source).inc(n)


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


class InFlight(NamedTuple):
    batch: Batch
    ack: asyncio.Future[None]
    sent: float  # perf_counter at submit


class Sender:
    def __init__(
        self,
        settings: PipelineSettings,
        sink: Sink,
        metrics: Metrics,
        committed: Committed,
        tracer: Any | None = None,
    ):
        self.settings = settings
        self.sink = sink
        self.metrics = metrics
        self.committed = committed  # the pipeline commits the buffer and tells whoever waits
        self.tracer = tracer
        self.breaker = CircuitBreaker(settings.breaker.failure_threshold, settings.breaker.reset_timeout_s)
        r = settings.retry
        self.backoff = Backoff(r.initial_backoff_s, r.max_backoff_s, r.multiplier, r.jitter)
        self.last_error: str | None = None
        self.ack_overdue = False
        self.sink_up = False  # as iot_sink_up: the last write acknowledged and no acknowledgement overdue
        self.inflight: deque[InFlight] = deque()  # sent, not yet acknowledged, oldest first
        self._delivering_since: float | None = None  # a retried batch (`_deliver`) waiting for its ack
        self._sink_open = False

    def _set_sink_up(self, up: bool) -> None:
        self.sink_up = up
        self.metrics.sink_up.set(1 if up else 0)

    async def run(self, batcher: Batcher) -> None:
        """Send until `batcher` is stopped with nothing in flight; records left unsent stay in the buffer."""
        inflight = self.inflight
        while True:
            while len(inflight) < self.settings.max_inflight_batches:
                # The sink idle: what is pending leaves at once. Busy: records gather for the next batch.
                if inflight:
                    if await batcher.gather(inflight[0].ack):
                        break  # the oldest ack is back: commit it first
                elif not await batcher.wait_data():
                    return  # stopped, nothing in flight
                batch = batcher.take()
                if batch is None:
                    if inflight:
                        continue  # nothing waiting yet: wait again for the ack or for data
                    break
                started = time.perf_counter()
                try:
                    ack = await self._submit(batch.records)
                except Exception as exc:
                    inflight.append(InFlight(batch, _failed_future(exc), started))
                    break
                inflight.append(InFlight(batch, ack, started))
            if not inflight:
                if batcher.stopped:
                    return
                continue
            oldest = inflight[0]
            try:
                await oldest.ack
            except Exception as exc:
                if not await self._resend_after(exc, batcher):
                    return  # stopping while the sink is down: the records stay in the buffer
                continue
            inflight.popleft()
            self._succeeded(oldest.batch.records, time.perf_counter() - oldest.sent, attempt=0)
            self.committed(oldest.batch)

    async def _resend_after(self, exc: BaseException, batcher: Batcher) -> bool:
        """The oldest ack failed: send every batch that was in flight again, in order; False if stopped."""
        inflight = self.inflight
        self._failed(_as_sink_error(exc), inflight[0].batch.records, 0)
        redo = [entry.batch for entry in inflight]
        for entry in inflight:
            _discard(entry.ack)
        inflight.clear()
        for batch in redo:
            if not await self._deliver(batch.records, batcher, first_attempt=1):
                return False
            self.committed(batch)
        return True

    async def watch_acks(self) -> None:
        """Sink health beyond refused connections: a batch unacknowledged for `sink_ack_timeout_s` (a hung
        service that keeps the connection open) sets iot_sink_up 0 until the next acknowledgement."""
        timeout = self.settings.sink_ack_timeout_s
        while True:
            await asyncio.sleep(min(1.0, timeout / 4))
            since = self.inflight[0].sent if self.inflight else self._delivering_since
            if since is not None and time.perf_counter() - since > timeout and not self.ack_overdue:
                self.ack_overdue = True
                self._set_sink_up(False)
                waited = time.perf_counter() - since
                self.last_error = (
                    f"no acknowledgement from the sink for {waited:.0f} s (sink_ack_timeout_s {timeout:g})"
                )
                log.error("sink %s: %s", self.sink.name, self.last_error)

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

    async def _deliver(self, records: list[Record], batcher: Batcher, first_attempt: int = 0) -> bool:
        """Send one batch until acknowledged (retries with backoff, breaker); False if stopped first."""
        attempt = first_attempt
        while True:
            delay = self.breaker.wait_time() or (self.backoff.delay(attempt - 1) if attempt else 0)
            self.metrics.breaker_open.set(1 if self.breaker.state == "open" else 0)
            if delay > 0 and not await batcher.until_stopped(asyncio.sleep(delay)):
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
        count_failed(self.metrics, error.error_type, records)
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

    async def close(self) -> None:
        if self._sink_open:
            try:
                await self.sink.close()
            except Exception as exc:  # stopping anyway; say why the sink did not close cleanly
                log.warning("sink %s did not close cleanly: %s", self.sink.name, exc)
            self._sink_open = False
