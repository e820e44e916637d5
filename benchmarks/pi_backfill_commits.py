"""Many merges into one PI table in one process, as a long backfill makes them: ms per merge, per block.

The local `DeltaSink` keeps a delta-rs table object per table between commits (re-opening one costs ~50 ms
at ~1,300 files), but such an object gets slower with every commit it has seen. The shipped sink opens it
afresh every `REOPEN_AFTER_VERSIONS` commits; the baseline, in the same run on a table of its own, never
does (the code before). Each merge is one hour of 50 tags × 12 values, a checkpoint every 100 merges (as
delta-rs' post-commit hook makes them). Prints wall and CPU ms per merge for each block of 100.

    .venv/bin/python benchmarks/pi_backfill_commits.py [--blocks 6]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import resource
import tempfile
import time

import pyarrow as pa
from deltalake import DeltaTable

from osipi_connector.lake import delta_sink
from osipi_connector.lake.schemas import TIMESERIES

PER_BLOCK = 100
T0 = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def hour(n: int, tags: int = 50, per_hour: int = 12) -> pa.Table:
    start = T0 + dt.timedelta(hours=n)
    stamps = [start + dt.timedelta(minutes=5 * j) for _ in range(tags) for j in range(per_hour)]
    rows = len(stamps)
    columns = {f.name: pa.nulls(rows, f.type) for f in TIMESERIES.schema}
    columns["tag_webid"] = pa.array([f"W{i}" for i in range(tags) for _ in range(per_hour)])
    columns["timestamp"] = pa.array(stamps, TIMESERIES.schema.field("timestamp").type)
    columns["value_seq"] = pa.array([0] * rows, pa.int32())
    columns["value"] = pa.array([float(n)] * rows)
    columns["partition_date"] = pa.array([s.date() for s in stamps], pa.date32())
    columns["ingested_at"] = pa.array([start] * rows, TIMESERIES.schema.field("ingested_at").type)
    return pa.table([columns[f.name] for f in TIMESERIES.schema], schema=TIMESERIES.schema)


def blocks(reopen_after: int, count: int) -> list[tuple[float, float]]:
    """(wall ms, CPU ms) per merge for each block."""
    shipped = delta_sink.REOPEN_AFTER_VERSIONS
    delta_sink.REOPEN_AFTER_VERSIONS = reopen_after
    out = []
    try:
        with tempfile.TemporaryDirectory() as root:
            sink = delta_sink.DeltaSink(root)
            merges = 0
            for _ in range(count):
                start, cpu0 = time.perf_counter(), _cpu()
                for _ in range(PER_BLOCK):
                    sink.merge(TIMESERIES, hour(merges))
                    merges += 1
                    if merges % 100 == 0:
                        DeltaTable(sink.path(TIMESERIES)).create_checkpoint()
                out.append(((time.perf_counter() - start) / PER_BLOCK * 1e3, (_cpu() - cpu0) / PER_BLOCK * 1e3))
    finally:
        delta_sink.REOPEN_AFTER_VERSIONS = shipped
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=6)
    args = parser.parse_args()
    print(
        f"# PI merges in one process — {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {os.cpu_count()} CPU,"
        f" load {os.getloadavg()[0]:.1f}, re-open every {delta_sink.REOPEN_AFTER_VERSIONS} commits"
    )
    shipped = blocks(delta_sink.REOPEN_AFTER_VERSIONS, args.blocks)
    never = blocks(10**9, args.blocks)
    print("| merges | shipped: wall / CPU per merge | never re-opened: wall / CPU per merge | CPU ratio |")
    print("|---|---|---|---|")
    for i, ((sw, sc), (nw, nc)) in enumerate(zip(shipped, never)):
        print(
            f"| {i * PER_BLOCK + 1}–{(i + 1) * PER_BLOCK} | {sw:.1f} / {sc:.1f} ms | {nw:.1f} / {nc:.1f} ms | {nc / sc:.2f}x |"
        )


if __name__ == "__main__":
    main()
