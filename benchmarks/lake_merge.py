"""How much an idempotent MERGE costs against a plain append, on the local delta-rs sink.

Builds `pi_timeseries` with M rows (tags × days, partitioned by date), then, each on a fresh copy of it, writes
N rows four ways through `DeltaSink`:
  append          plain append of N new rows (the baseline: what a non-idempotent connector does)
  merge new day   N new rows of the next day (the hourly incremental case: one partition touched)
  merge re-run    the new day merged again (a retried window: matched, unchanged, nothing rewritten)
  merge updates   N existing rows with changed values spread over every day (late edits: every partition)
and prints rows/s and the ratio to the append.

    .venv/bin/python benchmarks/lake_merge.py [--rows 200000] [--table-rows 2000000] [--tags 2000]
"""

from __future__ import annotations

import argparse
import platform
import resource
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa

from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.schemas import TIMESERIES

DAY_US = 86_400_000_000
START_US = 1_740_787_200_000_000  # 2025-03-01T00:00:00Z


def batch(tags: int, first_day: int, days: int, per_tag_day: int, value_offset: float = 0.0) -> pa.Table:
    """tags × days × per_tag_day values, evenly spaced in each day; built column-wise (no Python loop per row)."""
    tag = np.repeat(np.arange(tags), days * per_tag_day)
    day = np.tile(np.repeat(np.arange(first_day, first_day + days), per_tag_day), tags)
    slot = np.tile(np.arange(per_tag_day), tags * days)
    ts = START_US + day * DAY_US + slot * (DAY_US // per_tag_day)
    names = pa.array([f"W{t:05d}" for t in range(tags)])
    n = len(tag)
    columns = {f.name: pa.nulls(n, f.type) for f in TIMESERIES.schema}
    columns |= {
        "tag_webid": names.take(pa.array(tag)),
        "tag_name": names.take(pa.array(tag)),
        "timestamp": pa.array(ts, pa.timestamp("us", tz="UTC")),
        "value_seq": pa.array(np.zeros(n, np.int32)),
        "value": pa.array(np.sin(ts / 1e9) + value_offset),
        "good": pa.array(np.ones(n, bool)),
        "units": pa.array(["degC"] * n),
        "partition_date": pa.array((ts // DAY_US).astype(np.int32), pa.date32()),
        "ingested_at": pa.array(np.full(n, START_US + 30 * DAY_US), pa.timestamp("us", tz="UTC")),
        "run_id": pa.array(["bench"] * n),
    }
    return pa.table(columns, schema=TIMESERIES.schema)


def timed(base: Path, work: Path, action, setup=None) -> float:
    """Seconds for `action` on a fresh copy of the base table (after an untimed `setup`)."""
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work)
    sink = DeltaSink(work)
    if setup:
        setup(sink)
    started = time.perf_counter()
    action(sink)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000, help="N: rows written per scenario")
    parser.add_argument("--table-rows", type=int, default=2_000_000, help="M: rows already in the table")
    parser.add_argument("--tags", type=int, default=2_000)
    parser.add_argument("--days", type=int, default=10, help="days (partitions) the M rows span")
    args = parser.parse_args()

    per_day_existing = max(1, args.table_rows // (args.tags * args.days))
    per_day_new = max(1, args.rows // args.tags)
    existing = batch(args.tags, 0, args.days, per_day_existing)
    new_day = batch(args.tags, args.days, 1, per_day_new)
    updates = batch(args.tags, 0, args.days, per_day_existing, value_offset=1.0)
    updates = updates.take(np.random.default_rng(1).choice(updates.num_rows, new_day.num_rows, replace=False))

    with tempfile.TemporaryDirectory(prefix="lake-bench-") as tmp:
        base, work = Path(tmp) / "base", Path(tmp) / "work"
        DeltaSink(base).append(TIMESERIES, existing)
        n = new_day.num_rows
        merge_new_day = lambda s: s.merge(TIMESERIES, new_day)  # noqa: E731
        results = {
            "append (baseline)": timed(base, work, lambda s: s.append(TIMESERIES, new_day)),
            "merge new day": timed(base, work, merge_new_day),
            "merge re-run (unchanged)": timed(base, work, merge_new_day, setup=merge_new_day),
            "merge updates over all days": timed(base, work, lambda s: s.merge(TIMESERIES, updates)),
        }

    print(
        f"{platform.machine()}, {platform.python_version()}, table {existing.num_rows:,} rows in {args.days} days, batch {n:,} rows"
    )
    append = results["append (baseline)"]
    for label, seconds in results.items():
        print(f"{label:30s} {seconds:7.3f} s  {n / seconds:>12,.0f} rows/s  {seconds / append:5.1f}× append time")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main()
