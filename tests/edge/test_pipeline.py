"""The pipeline end to end: emit -> spool/memory -> batches -> sink ack -> commit, with failures injected."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from deltalake import DeltaTable

from iot_connector.config.models import PipelineSettings
from iot_connector.pipeline import Pipeline, make_buffer
from iot_connector.pipeline.breaker import Backoff, CircuitBreaker
from iot_connector.sinks.delta import DeltaSink
from tests.edge.helpers import PipelinedSink, RecordingSink, make_records, seqs

FAST_RETRY = {"initial_backoff_s": 0.01, "max_backoff_s": 0.05, "jitter": 0}


def _settings(**kw) -> PipelineSettings:
    base = {"batch_max_records": 50, "batch_max_wait_ms": 5, "retry": FAST_RETRY, "drain_timeout_s": 2}
    base.update(kw)
    return PipelineSettings.model_validate(base)


def _pipeline(tmp_path: Path, sink, **kw) -> Pipeline:
    settings = _settings(**kw)
    return Pipeline(settings, sink, make_buffer(settings, tmp_path / "spool"))


async def _until(predicate, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_records_land_in_delta_in_order(tmp_path: Path) -> None:
    sink = DeltaSink(tmp_path / "table", agent_id="agent-7")
    pipe = _pipeline(tmp_path, sink)
    await pipe.start()
    sent = make_records(500)
    for i in range(0, 500, 37):
        await pipe.emit(sent[i : i + 37])
    await _until(lambda: pipe.buffer.depth == 0)
    await pipe.stop()
    rows = DeltaTable(str(tmp_path / "table")).to_pyarrow_table().to_pylist()
    assert sorted(r["seq"] for r in rows) == list(range(500))
    by_seq = {r["seq"]: r for r in rows}
    assert len(by_seq) == 500
    row = by_seq[42]
    assert row["value_double"] == 42.0
    assert row["tag_id"] == "hr:0"
    assert row["agent_id"] == "agent-7"
    assert row["attributes"] == [("unit_id", "1")]
    assert row["record_id"] == sent[42].record_id
    assert row["ingest_ts"] >= row["edge_ts"]
    assert pipe.metrics.records_written.labels(protocol="modbus")._value.get() == 500
    assert pipe.metrics.records_read.labels(source="plc1")._value.get() == 500


async def test_sink_outage_spools_then_drains_in_order(tmp_path: Path) -> None:
    sink = RecordingSink()
    sink.fail_next = 8
    pipe = _pipeline(tmp_path, sink, breaker={"failure_threshold": 3, "reset_timeout_s": 0.05})
    await pipe.start()
    for i in range(0, 1000, 100):
        await pipe.emit(make_records(100, i))
    await _until(lambda: len(sink.records) == 1000)
    await pipe.stop()
    assert seqs(sink.records) == list(range(1000))
    assert pipe.metrics.records_failed.labels(error_type="test_outage", source="plc1")._value.get() >= 8 * 50
    assert sink.attempts >= 8 + 1000 // 50


async def test_breaker_opens_and_spaces_retries(tmp_path: Path) -> None:
    sink = RecordingSink()
    sink.fail_next = 1000
    pipe = _pipeline(tmp_path, sink, breaker={"failure_threshold": 2, "reset_timeout_s": 30})
    await pipe.start()
    await pipe.emit(make_records(10))
    await _until(lambda: pipe.breaker.state == "open")
    attempts = sink.attempts
    await asyncio.sleep(0.3)
    assert sink.attempts == attempts == 2  # open: no call for reset_timeout_s
    assert pipe.metrics.breaker_open._value.get() == 1
    await pipe.stop(drain_timeout_s=0)
    assert stalled_records_kept(tmp_path) == 10
    again = _pipeline(tmp_path, RecordingSink())
    await again.start()
    await _until(lambda: len(again.sink.records) == 10)
    assert all(r.is_replayed for r in again.sink.records)
    await again.stop()


def test_breaker_state_machine() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=2, reset_timeout_s=10, clock=lambda: now[0])
    breaker.record_failure()
    assert breaker.state == "closed"
    breaker.record_failure()
    assert (breaker.state, breaker.wait_time()) == ("open", 10)
    now[0] = 10.0
    assert breaker.state == "half_open"
    breaker.record_failure()  # the trial failed: open again for a full period
    assert (breaker.state, breaker.wait_time()) == ("open", 10)
    now[0] = 25.0
    breaker.record_success()
    assert breaker.state == "closed"


def test_backoff_grows_and_caps() -> None:
    backoff = Backoff(initial_s=0.1, max_s=1.0, multiplier=2, jitter=0)
    assert [backoff.delay(n) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


async def test_restart_replays_unacknowledged_records(tmp_path: Path) -> None:
    stalled = RecordingSink()
    stalled.gate = asyncio.Event()  # never opened: the sink never acknowledges
    pipe = _pipeline(tmp_path, stalled)
    await pipe.start()
    await pipe.emit(make_records(120))
    await pipe.stop(drain_timeout_s=0.1)

    sink = RecordingSink()
    again = _pipeline(tmp_path, sink)
    await again.start()
    await again.emit(make_records(30, 120))
    await _until(lambda: len(sink.records) == 150)
    await again.stop()
    assert seqs(sink.records) == list(range(150))
    assert [r.is_replayed for r in sink.records] == [True] * 120 + [False] * 30


async def _stalled_memory_pipeline(tmp_path: Path, policy: str, cap: int) -> tuple[RecordingSink, Pipeline]:
    """A started memory-only pipeline whose sink holds every write until `sink.gate` is set."""
    sink = RecordingSink()
    sink.gate = asyncio.Event()
    settings = {
        "memory_queue_records": cap,
        "drop_policy": policy,
        "spool": {"enabled": False},
        "batch_max_records": 10,
    }
    pipe = _pipeline(tmp_path, sink, **settings)
    await pipe.start()
    return sink, pipe


async def test_memory_buffer_drop_newest_counts(tmp_path: Path) -> None:
    sink, pipe = await _stalled_memory_pipeline(tmp_path, "newest", 100)
    await pipe.emit(make_records(150))
    assert pipe.dropped == 50
    assert pipe.metrics.records_dropped.labels(policy="newest")._value.get() == 50
    sink.gate.set()
    await _until(lambda: len(sink.records) == 100)
    assert seqs(sink.records) == list(range(100))
    await pipe.stop()


async def test_memory_buffer_drop_oldest_keeps_newest(tmp_path: Path) -> None:
    sink, pipe = await _stalled_memory_pipeline(tmp_path, "oldest", 100)
    await pipe.emit(make_records(1))
    await _until(lambda: sink.attempts == 1)  # record 0 is in flight, held by the stalled sink
    await pipe.emit(make_records(149, 1))
    assert pipe.metrics.records_dropped.labels(policy="oldest")._value.get() == 50
    sink.gate.set()
    await _until(lambda: len(sink.records) == 100)
    assert seqs(sink.records) == [0, *range(51, 150)]
    await pipe.stop()


async def test_block_policy_applies_backpressure(tmp_path: Path) -> None:
    sink, pipe = await _stalled_memory_pipeline(tmp_path, "block", 20)
    emitting = asyncio.create_task(pipe.emit(make_records(60)))
    await asyncio.sleep(0.2)
    assert not emitting.done()  # the source is blocked while the sink does not acknowledge
    sink.gate.set()
    await asyncio.wait_for(emitting, 5)
    await _until(lambda: len(sink.records) == 60)
    assert seqs(sink.records) == list(range(60))
    assert pipe.dropped == 0
    await pipe.stop()


@pytest.mark.parametrize("policy", ["oldest", "newest", "block"])
async def test_full_spool_applies_policy(tmp_path: Path, policy: str) -> None:
    sink = RecordingSink()
    sink.gate = asyncio.Event()
    spool = {"max_bytes": 1 << 16, "segment_bytes": 1 << 14, "durability": "write"}
    pipe = _pipeline(tmp_path, sink, drop_policy=policy, spool=spool, batch_max_records=20)
    await pipe.start()
    emitting = asyncio.create_task(_emit_many(pipe, 2000))
    await asyncio.sleep(0.5)
    assert pipe.buffer.size_bytes <= 1 << 16
    if policy == "block":
        assert not emitting.done()
    else:
        await asyncio.wait_for(emitting, 5)
        assert pipe.metrics.records_dropped.labels(policy=policy)._value.get() > 0
    sink.gate.set()
    await asyncio.wait_for(emitting, 20)
    await _until(lambda: pipe.buffer.depth == 0, 20)
    await pipe.stop()
    got = seqs(sink.records)
    if policy == "block":
        assert got == list(range(2000))
    else:
        assert len(set(got)) + pipe.dropped >= 2000
        assert got == sorted(got)  # what survives stays in order
        if policy == "newest":
            assert got[:20] == list(range(20))
        else:
            assert got[-1] == 1999


def stalled_records_kept(tmp_path: Path) -> int:
    from iot_connector.pipeline.spool import scan_segment

    return sum(scan_segment(p)[1] for p in (tmp_path / "spool").glob("*.seg"))


async def _emit_many(pipe: Pipeline, n: int, chunk: int = 10, pause_s: float = 0.0) -> None:
    """`n` records in emits of `chunk`, `pause_s` apart (a source's steady trickle)."""
    for start in range(0, n, chunk):
        await pipe.emit(make_records(chunk, start))
        if pause_s:
            await asyncio.sleep(pause_s)


async def test_batches_in_flight_and_a_lost_ack_resends_in_order(tmp_path: Path) -> None:
    sink = PipelinedSink(ack_delay_s=0.05, fail_acks=frozenset({3}))
    pipe = _pipeline(tmp_path, sink, batch_max_records=20, max_inflight_batches=4)
    await pipe.start()
    await pipe.emit(make_records(400))
    await _until(lambda: pipe.buffer.depth == 0)
    await pipe.stop()
    assert sink.max_unacked > 1  # several batches were sent before the first ack came back
    sent = [seq for batch in sink.submitted for seq in seqs(batch)]
    assert list(dict.fromkeys(sent)) == list(range(400))  # the sink saw log order, re-sends only repeat
    assert sorted(set(seqs(sink.records))) == list(range(400))
    assert pipe.metrics.records_failed.labels(error_type="test_ack_lost", source="plc1")._value.get() == 20


async def test_partial_batches_are_not_held_behind_a_slow_ack(tmp_path: Path) -> None:
    """A trickle never fills a batch; with a slow ack, data that waited one batch window still goes out, so
    several partial batches are in flight instead of one per round trip."""
    sink = PipelinedSink(ack_delay_s=0.3)
    pipe = _pipeline(tmp_path, sink, batch_max_records=1000, batch_max_wait_ms=10, max_inflight_batches=4)
    await pipe.start()
    await _emit_many(pipe, 200, pause_s=0.02)
    await _until(lambda: pipe.buffer.depth == 0)
    await pipe.stop()
    assert sink.max_unacked >= 3
    assert seqs(sink.records) == list(range(200))


async def test_stop_drains_the_memory_queue(tmp_path: Path) -> None:
    """Without the spool nothing survives a restart, so stop sends what is queued (within drain_timeout_s)."""
    sink = PipelinedSink(ack_delay_s=0.01)
    pipe = _pipeline(tmp_path, sink, spool={"enabled": False}, batch_max_records=10, batch_max_wait_ms=1000)
    await pipe.start()
    await pipe.emit(make_records(95))
    await pipe.stop(drain_timeout_s=5)
    assert seqs(sink.records) == list(range(95))
    assert pipe.buffer.depth == 0


async def test_an_idle_sink_gets_a_record_at_once_whatever_the_window(tmp_path: Path) -> None:
    """The batch window is only for a busy sink: a lone record does not wait for it."""
    sink = PipelinedSink(ack_delay_s=0.001)
    pipe = _pipeline(tmp_path, sink, batch_max_records=1000, batch_max_wait_ms=10_000)
    await pipe.start()
    await pipe.emit(make_records(1))
    await _until(lambda: len(sink.records) == 1, timeout=5)  # not the 10 s window
    await pipe.stop()


async def test_batches_grow_while_the_sink_is_busy(tmp_path: Path) -> None:
    """A steady trickle into a slow sink goes out in a few large batches, one per acknowledgement."""
    sink = PipelinedSink(ack_delay_s=0.1)
    pipe = _pipeline(tmp_path, sink, batch_max_records=10_000, batch_max_wait_ms=10_000, max_inflight_batches=1)
    await pipe.start()
    await _emit_many(pipe, 600, chunk=5, pause_s=0.002)
    await _until(lambda: len(sink.records) == 600)
    await pipe.stop()
    assert seqs(sink.records) == list(range(600))
    assert len(sink.submitted) < 600 / 5 / 3  # many emits per batch, not one batch each


async def test_delta_commits_are_spaced_by_the_window(tmp_path: Path) -> None:
    """Every batch is a Delta commit: under a steady trickle at most about one per window, the first at once."""
    sink = DeltaSink(tmp_path / "table", agent_id="a")
    pipe = _pipeline(tmp_path, sink, batch_max_records=10_000, batch_max_wait_ms=400)
    delivered: list[int] = []
    pipe.on_delivered = lambda records: delivered.append(len(records))
    await pipe.start()
    await _emit_many(pipe, 30, chunk=1, pause_s=0.02)
    await _until(lambda: sum(delivered) == 30)
    await pipe.stop()
    assert delivered[0] == 1  # leading edge: the first record did not wait for company
    assert len(delivered) <= 5  # ~0.6 s of records: not a commit per record
    assert sorted(r["seq"] for r in DeltaTable(str(tmp_path / "table")).to_pyarrow_table().to_pylist()) == list(
        range(30)
    )
