"""What a local Delta append costs in itself: delta-rs' `write_deltalake` against a bare commit, 200 records.

The bare commit is an experiment, not the product's path: the records as Parquet written by pyarrow, then one
log entry (an `add` action and `commitInfo`) created with `O_EXCL` at the next free version. It is what an
append-only writer of the agent's own table could do, and it prints how much of the edge Delta sink's commit
cost (issue 17: p99 <= 50 ms into Delta, backlog drain) is delta-rs' write path. Both run on the same table,
alternating; delta-rs then reads every row back. Prints ms of wall time and CPU per commit.

    .venv/bin/python benchmarks/edge_delta_commit_cost.py [--commits 100] [--rounds 2] [--rows 200]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake

from edge_delta_commits import records  # same directory
from iot_connector.model import RECORD_SCHEMA
from iot_connector.sinks.delta import records_table


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def bare_commit(path: Path, table: pa.Table, version: int) -> int:
    """Append `table` as one Parquet file and one log entry at the first free version after `version`."""
    name = f"part-{uuid.uuid4()}.parquet"
    pq.write_table(table, path / name)
    now = int(time.time() * 1000)
    add = {
        "path": name,
        "partitionValues": {},
        "size": (path / name).stat().st_size,
        "modificationTime": now,
        "dataChange": True,
        "stats": json.dumps({"numRecords": table.num_rows}),
    }
    info = {"timestamp": now, "operation": "WRITE", "operationParameters": {"mode": "Append"}}
    body = (json.dumps({"add": add}) + "\n" + json.dumps({"commitInfo": info}) + "\n").encode()
    while True:
        version += 1
        try:
            fd = os.open(path / "_delta_log" / f"{version:020d}.json", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            continue
        with os.fdopen(fd, "wb") as fh:
            fh.write(body)
        return version


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
    print("| round | write_deltalake: wall / CPU per commit | bare commit: wall / CPU per commit | CPU ratio |")
    print("|---|---|---|---|")
    table = records_table(records(args.rows, 0), "bench")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp)
        DeltaTable.create(str(path), schema=RECORD_SCHEMA)
        for round_ in range(1, args.rounds + 1):
            delta = DeltaTable(str(path))  # opened afresh, as the sink does after each checkpoint
            start, cpu0 = time.perf_counter(), _cpu()
            for _ in range(args.commits):
                write_deltalake(delta, table, mode="append")
            lib = ((time.perf_counter() - start) / args.commits * 1e3, (_cpu() - cpu0) / args.commits * 1e3)
            version = delta.version()
            start, cpu0 = time.perf_counter(), _cpu()
            for _ in range(args.commits):
                version = bare_commit(path, table, version)
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
