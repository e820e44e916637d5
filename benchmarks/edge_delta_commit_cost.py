"""What a local Delta append costs in itself: delta-rs' `write_deltalake` against the agent's blind appender
(`iot_connector.sinks.delta_append`, what the edge Delta sink commits with), 200 records a commit.

The appender writes the records as Parquet with pyarrow, flushes it, and links one log entry (commitInfo +
add with stats) at the next free version. Both run on the same table, alternating, delta-rs' writer on a
table object opened afresh each round (as the sink did after each checkpoint); delta-rs then reads every row
back. Prints ms of wall time and CPU per commit, and their ratio.

    .venv/bin/python benchmarks/edge_delta_commit_cost.py [--commits 100] [--rounds 2] [--rows 200]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

from deltalake import DeltaTable, PostCommitHookProperties, write_deltalake

from edge_delta_commits import records  # same directory
from iot_connector.model import RECORD_SCHEMA
from iot_connector.sinks.delta import records_table
from iot_connector.sinks.delta_append import BlindAppender

NO_CHECKPOINT = PostCommitHookProperties(create_checkpoint=False, cleanup_expired_logs=False)  # as the sink


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--commits", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--rows", type=int, default=200)
    args = parser.parse_args()
    print(
        f"# edge Delta commit cost — {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {os.cpu_count()} CPU,"
        f" load {os.getloadavg()[0]:.1f}, {args.rows} records per commit"
    )
    print("| round | write_deltalake: wall / CPU per commit | blind appender: wall / CPU per commit | CPU ratio |")
    print("|---|---|---|---|")
    table = records_table(records(args.rows, 0), "bench")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        DeltaTable.create(str(path), schema=RECORD_SCHEMA)
        for round_ in range(1, args.rounds + 1):
            delta = DeltaTable(str(path))  # opened afresh, as the sink does after each checkpoint
            start, cpu0 = time.perf_counter(), _cpu()
            for _ in range(args.commits):
                write_deltalake(delta, table, mode="append", post_commithook_properties=NO_CHECKPOINT)
            lib = ((time.perf_counter() - start) / args.commits * 1e3, (_cpu() - cpu0) / args.commits * 1e3)
            appender = BlindAppender(path, delta.version())
            start, cpu0 = time.perf_counter(), _cpu()
            for _ in range(args.commits):
                appender.append(table)
            bare = ((time.perf_counter() - start) / args.commits * 1e3, (_cpu() - cpu0) / args.commits * 1e3)
            print(
                f"| {round_} | {lib[0]:.2f} / {lib[1]:.2f} ms | {bare[0]:.2f} / {bare[1]:.2f} ms"
                f" | {lib[1] / bare[1]:.1f}x |"
            )
        rows = DeltaTable(str(path)).to_pyarrow_table(columns=["seq"]).num_rows
        expected = 2 * args.rounds * args.commits * args.rows
        print(f"<!-- delta-rs reads back {rows:,} rows of {expected:,} -->")
        if rows != expected:
            raise SystemExit(f"read back {rows} rows, expected {expected}")


if __name__ == "__main__":
    main()
