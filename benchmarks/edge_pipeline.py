"""Edge pipeline throughput and latency: emit -> durable spool -> batches -> sink acknowledgement.

For each sink (the ZeroBus gRPC double driven by the REAL SDK, and a local Delta table) it runs:
  pipeline   a producer emits N records in source-sized chunks through the Pipeline with the spool ON
             (fsync group commit), measuring records/s and p50/p99 latency from emit to sink ack
  baseline   the same records written straight into the same sink in the same batch size, sequentially,
             with no queue and no spool (what a naive agent does: read, send, wait for the ack)
and prints both and their ratio.

    .venv/bin/python benchmarks/edge_pipeline.py [--records 100000] [--chunk 100] [--batch 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("RUST_LOG", "warn")  # the SDK's per-stream INFO lines would interleave with the table

from tests.edge.helpers import make_records
from tests.edge.zerobus_double import ZerobusDouble

from iot_connector.config.models import PipelineSettings, ZerobusSinkSettings
from iot_connector.model import Record, now_us
from iot_connector.pipeline import Pipeline, make_buffer
from iot_connector.sinks.base import Sink
from iot_connector.sinks.delta import DeltaSink
from iot_connector.sinks.zerobus import ZerobusSink

TABLE = "main.edge.bench"


def records(start: int, n: int) -> list[Record]:
    return make_records(n, start, tags=20, source="bench")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _paced(rate: float | None, index: int, period_records: int, t0: float) -> None:
    """Sleep until this chunk's slot when an offered rate is set (open loop: latency is not backlog)."""
    if rate:
        delay = t0 + index * period_records / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)


async def run_pipeline(
    sink: Sink, spool_dir: Path, total: int, args: argparse.Namespace, durability: str, rate: float | None = None
) -> dict[str, float]:
    """N records from `args.producers` concurrent sources through the pipeline; rate None = as fast as it goes."""
    settings = PipelineSettings.model_validate(
        {"batch_max_records": args.batch, "batch_max_wait_ms": 20, "spool": {"durability": durability}}
    )
    latencies: list[float] = []
    done = asyncio.Event()

    def delivered(batch_records) -> None:
        now = now_us()
        latencies.extend((now - r.edge_ts) / 1e6 for r in batch_records)
        if len(latencies) >= total:
            done.set()

    pipe = Pipeline(settings, sink, make_buffer(settings, spool_dir), on_delivered=delivered)
    await pipe.start()
    chunk, producers = args.chunk, args.producers
    started = time.perf_counter()

    async def produce(first: int) -> None:  # one source: emits its chunks one after the other
        for start in range(first, total, chunk * producers):
            await _paced(rate, start // chunk, chunk, started)
            await pipe.emit(records(start, min(chunk, total - start)))

    await asyncio.gather(*(produce(p * chunk) for p in range(producers)))
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - started
    await pipe.stop()
    return {"rate": total / elapsed, "p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99)}


async def run_baseline(sink: Sink, total: int, batch: int, rate: float | None = None) -> dict[str, float]:
    """The same records straight into the sink, `batch` per write, waiting for each ack; no queue, no spool."""
    latencies: list[float] = []
    started = time.perf_counter()
    await sink.open()  # inside the timing, as in the pipeline (which opens the sink on its first batch)
    for index, start in enumerate(range(0, total, batch)):
        await _paced(rate, index, batch, started)
        chunk = records(start, min(batch, total - start))
        for r in chunk:
            r.finalize()
        await sink.write(chunk)
        now = now_us()
        latencies.extend((now - r.edge_ts) / 1e6 for r in chunk)
    elapsed = time.perf_counter() - started
    await sink.close()
    return {"rate": total / elapsed, "p50": pct(latencies, 0.5), "p99": pct(latencies, 0.99)}


def zerobus_sink(zb: ZerobusDouble) -> ZerobusSink:
    settings = ZerobusSinkSettings(
        workspace_url=zb.workspace_url,
        zerobus_endpoint=zb.endpoint,
        client_id=zb.client_id,
        client_secret=zb.client_secret,
        table=TABLE,
    )
    return ZerobusSink(settings, agent_id="bench")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=100, help="records per emit (one source read)")
    parser.add_argument("--batch", type=int, default=5_000, help="records per sink write")
    parser.add_argument("--producers", type=int, default=4, help="concurrent sources emitting")
    parser.add_argument("--rate", type=float, default=5_000, help="offered records/s for the latency runs")
    parser.add_argument("--seconds", type=float, default=5, help="length of each latency run")
    args = parser.parse_args()
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    print(f"# {platform.machine()}, {os.cpu_count()} CPU, Python {platform.python_version()}, {args.records:,} records")
    header = f"{'sink':<8} {'mode':<28} {'records/s':>10} {'vs base':>7} | at {args.rate:,.0f}/s: {'p50 ms':>7} {'p99 ms':>7}"
    print(header)
    paced_total = int(args.rate * args.seconds)
    with tempfile.TemporaryDirectory() as tmp, ZerobusDouble() as zb:
        work = Path(tmp)
        cases = [
            ("zerobus", lambda: zerobus_sink(zb)),
            ("delta", lambda: DeltaSink(work / f"delta-{time.monotonic_ns()}", agent_id="bench")),
        ]
        for name, make in cases:
            rows = {}
            for durability in ("fsync", "write"):
                spool_dir = work / f"spool-{name}-{durability}-{{}}"
                full = await run_pipeline(make(), Path(str(spool_dir).format(1)), args.records, args, durability)
                paced = await run_pipeline(
                    make(), Path(str(spool_dir).format(2)), paced_total, args, durability, args.rate
                )
                rows[f"pipeline, spool {durability}"] = (full, paced)
            base = await run_baseline(make(), args.records, args.batch)
            # the naive agent at the offered rate sends each source read (one chunk) and waits for its ack
            base_paced = await run_baseline(make(), paced_total, args.chunk, args.rate)
            rows["baseline: direct, no spool"] = (base, base_paced)
            for mode, (full, paced) in rows.items():
                print(
                    f"{name:<8} {mode:<28} {full['rate']:>10,.0f} {full['rate'] / base['rate']:>6.2f}x |"
                    f" {'':>{len(f'at {args.rate:,.0f}/s:')}} {paced['p50'] * 1e3:>7.1f} {paced['p99'] * 1e3:>7.1f}"
                )


if __name__ == "__main__":
    asyncio.run(main())
