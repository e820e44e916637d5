"""The edge Delta sink's commit time as its table grows: 200-record appends, back to back.

Each append goes through `DeltaSink.write` (records -> Arrow -> delta-rs commit). Printed per block of
appends: p50 / p99 commit time, CPU per commit (the process: appends, and compactions on their thread), and
at the end of the block the live files and the entries in `_delta_log`, for two sinks in the same run:
- shipped: the upkeep compacts small files every 100 commits and checkpoints beside the appends, handing
  the sink a fresh table object each time; log entries expire after `--log-retention-minutes` (the shipped default is 10: pass 1 to see the steady
  state within a few minutes);
- no upkeep: checkpoints and fresh table objects as shipped, never compacted, Delta's default log
  retention (30 days);
The ratio is CPU per commit of the no-upkeep sink / the shipped one, per block. (Session 6's sink, one table
object held open for ever, went 27 -> 132 ms p50 per append over 1,000 appends in the same shape.)

    .venv/bin/python benchmarks/edge_delta_commits.py [--appends 5000] [--rows 200] [--block 500]
        [--log-retention-minutes 10]
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

from deltalake import DeltaTable

import iot_connector.sinks.delta as delta
from iot_connector.config.models import DeltaSinkSettings
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


Block = tuple[float, float, float, int, int]  # p50 ms, p99 ms, CPU ms per commit, live files, log entries
DELTA_DEFAULT_LOG_MINUTES = 30 * 24 * 60


async def blocks(
    reopen_every: int, compact_every: int, log_minutes: int, appends: int, rows: int, block: int
) -> list[Block]:
    delta.REOPEN_EVERY = reopen_every
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = DeltaSinkSettings(compact_every_commits=compact_every, log_retention_minutes=log_minutes)
        sink = delta.DeltaSink(Path(tmp) / "t", agent_id="bench", settings=settings)
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
            files = len(DeltaTable(sink.path).file_uris())
            out.append((q[49], q[98], cpu, files, len(list((sink.path / "_delta_log").iterdir()))))
        await sink.close()
    return out


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--appends", type=int, default=5000)
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--block", type=int, default=500)
    parser.add_argument("--log-retention-minutes", type=int, default=DeltaSinkSettings().log_retention_minutes)
    args = parser.parse_args()
    fixed = delta.REOPEN_EVERY
    print(
        f"# edge Delta commits — {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {os.cpu_count()} CPU,"
        f" Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}, {args.rows} records per append"
    )
    print(
        f"| appends | shipped (log {args.log_retention_minutes} min): p50 / p99, CPU/commit, files, log entries"
        " | no upkeep | ratio |"
    )
    print("|---|---|---|---|")
    compact = DeltaSinkSettings().compact_every_commits
    shipped = await blocks(fixed, compact, args.log_retention_minutes, args.appends, args.rows, args.block)
    plain = await blocks(fixed, 0, DELTA_DEFAULT_LOG_MINUTES, args.appends, args.rows, args.block)
    for i, ours in enumerate(shipped):
        cells = [f"{i * args.block + 1}-{(i + 1) * args.block}", _cell(ours)]
        cells += [_cell(plain[i]), f"{plain[i][2] / ours[2]:.2f}x"]
        print("| " + " | ".join(cells) + " |")


def _cell(block: Block) -> str:
    p50, p99, cpu, files, logs = block
    return f"{p50:.1f} / {p99:.1f} ms, {cpu:.1f} ms, {files:,}, {logs:,}"


if __name__ == "__main__":
    asyncio.run(main())
