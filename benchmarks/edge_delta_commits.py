"""The edge Delta sink's commit time as its table grows: 200-record appends (5,000 msg/s at a 40 ms cycle).

Each append goes through `DeltaSink.write` (records -> Arrow -> delta-rs commit). Printed per block of
appends: p50 / p99 commit time, and CPU per commit. Baseline in the same run: the same appends through a
sink whose table object is never re-opened (`REOPEN_EVERY` huge: the code before the fix), whose commits
slow down with every commit the object has seen. The ratio is baseline / sink per block.

    .venv/bin/python benchmarks/edge_delta_commits.py [--appends 1000] [--rows 200] [--block 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import resource
import statistics
import tempfile
import time
from pathlib import Path

import iot_connector.sinks.delta as delta
from iot_connector.model import Record


def records(n: int, start: int) -> list[Record]:
    return [
        Record(
            source_id="bench",
            protocol="mqtt",
            endpoint="mqtt://127.0.0.1",
            tag_id=f"line/{i % 50}",
            data_type="double",
            value_double=i * 0.5,
            source_ts=1_700_000_000_000_000 + i,
            seq=i,
            record_id=f"r{i}",
        )
        for i in range(start, start + n)
    ]


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def blocks(reopen_every: int, appends: int, rows: int, block: int) -> list[tuple[float, float, float]]:
    """(p50 ms, p99 ms, CPU ms per commit) per block of `block` appends."""
    delta.REOPEN_EVERY = reopen_every
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        sink = delta.DeltaSink(Path(tmp) / "t", agent_id="bench")
        await sink.open()
        for first in range(0, appends, block):
            took, cpu0 = [], _cpu()
            for i in range(first, first + block):
                batch = records(rows, i * rows)
                start = time.perf_counter()
                await sink.write(batch)
                took.append((time.perf_counter() - start) * 1000)
            cpu = (_cpu() - cpu0) / block * 1000
            q = statistics.quantiles(took, n=100)
            out.append((q[49], q[98], cpu))
        await sink.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appends", type=int, default=1000)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--block", type=int, default=200)
    args = parser.parse_args()
    fixed = delta.REOPEN_EVERY
    print(
        f"# edge Delta commits — {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {os.cpu_count()} CPU,"
        f" Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}, {args.rows} records per append"
    )
    head = f"| appends | p50 / p99 (re-opened every {fixed}) | CPU/commit | p50 / p99 (never re-opened) | CPU/commit"
    print(head + " | CPU ratio |")
    print("|---|---|---|---|---|---|")
    ours = await blocks(fixed, args.appends, args.rows, args.block)
    base = await blocks(10**9, args.appends, args.rows, args.block)
    for i, ((p50, p99, cpu), (b50, b99, bcpu)) in enumerate(zip(ours, base)):
        span = f"{i * args.block + 1}-{(i + 1) * args.block}"
        print(
            f"| {span} | {p50:.1f} / {p99:.1f} ms | {cpu:.1f} ms | {b50:.1f} / {b99:.1f} ms | {bcpu:.1f} ms"
            f" | {bcpu / cpu:.2f}x |"
        )


if __name__ == "__main__":
    asyncio.run(main())
