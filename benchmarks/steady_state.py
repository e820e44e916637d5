"""The hourly incremental job in its steady state: a day of hourly runs into tables that already hold the day.

A full-load benchmark (pi_extract.py) writes into empty tables; users live in the hourly run of every tag
into a partition that grows all day. This script runs the connector once per simulated hour, `--now`
advancing (00:00 → 01:00 → ...), `mode: incremental`, `lookback: 10m`, `workers: 4`, no AF / event frames,
the simulator's late and edited data on (its defaults), all into the same local tables, and prints per run:
wall seconds, values, values/s, peak RSS of the connector process (each run is its own process, as an hourly
job is), and how the sink split the rows (appended vs MERGEd, files the MERGEs rewrote). The last line is
the steady-state ratio: the last run's seconds per value over the first run's (and over the second's: the
first run writes into empty tables). 1.0 means a run costs what its new data costs, whatever the table holds.

    .venv/bin/python benchmarks/steady_state.py --tags 3000 --hours 8
    .venv/bin/python benchmarks/steady_state.py --tags 30000 --hours 24
    .venv/bin/python benchmarks/steady_state.py --src /tmp/old/src      # the same day with another source tree
    .venv/bin/python benchmarks/steady_state.py --profile 3               # cProfile of run 3 (top 25 by cumtime)
    .venv/bin/python benchmarks/steady_state.py --tracemalloc 3           # Python allocations of run 3

Each run starts its own simulator (`osipi-connector simulate --now T --rate-limit 0`, same seed, so the
hours agree) on 127.0.0.1; its start-up is not counted.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import logging
import os
import pstats
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

from pi_extract import start_simulator

DAY = datetime(2025, 3, 1, tzinfo=timezone.utc)
HERE = Path(__file__).resolve()


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# --- one run (child process) ---------------------------------------------------------------------------------
def one_run(url: str, root: Path, args: argparse.Namespace) -> dict:
    """One hourly run of the connector, as the scheduled job does it; the sink is counted, not changed."""
    from osipi_connector import PILakeflowConnector
    from osipi_connector.lake.delta_sink import DeltaSink

    counts = {"merge_seconds": 0.0, "timeseries_commits": 0}

    class CountingSink(DeltaSink):
        def merge(self, spec, data, *more, **options):  # forwards whatever the sink's signature is
            started = time.perf_counter()
            try:
                return super().merge(spec, data, *more, **options)
            finally:
                counts["merge_seconds"] += time.perf_counter() - started
                counts["timeseries_commits"] += spec.name == "pi_timeseries"

    config = {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {
            "name_filter": "*",
            "mode": "incremental",
            "start_date": iso(DAY),  # a tag seen for the first time starts at midnight
            "lookback": args.lookback,
            "batch_size": args.batch_size,
            "max_count_per_tag": 150_000,
        },
        "performance": {"workers": args.workers, "commit_rows": args.commit_rows},
        "local": {"lakehouse_root": str(root)},
    }
    before = table_version(root)
    profiler = cProfile.Profile() if args.child_profile == "cprofile" else None
    if args.child_profile == "tracemalloc":
        tracemalloc.start(25)
    started = time.perf_counter()
    if profiler:
        profiler.enable()
    result = PILakeflowConnector(config, sink=CountingSink(root)).run(datasets=["tags", "timeseries"])
    if profiler:
        profiler.disable()
    seconds = time.perf_counter() - started
    assert result.status == "success", result.errors
    out = {
        "values": result.rows.get("pi_timeseries", 0),
        "seconds": seconds,
        "peak_mb": peak_rss_mb(),
        **counts,
    }
    if profiler:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
        out["profile"] = text.getvalue()
    if args.child_profile == "tracemalloc":
        current, peak = tracemalloc.get_traced_memory()
        top = tracemalloc.take_snapshot().statistics("lineno")[:10]
        out["profile"] = (
            f"tracemalloc: peak {peak / 2**20:,.0f} MiB, still held {current / 2**20:,.0f} MiB\n"
            + "\n".join(str(s) for s in top)
        )
    out |= table_shape(root, before)
    return out


def timeseries_path(root: Path) -> Path:
    return root / "main" / "bronze" / "pi_timeseries"


def table_version(root: Path) -> int:
    from deltalake import DeltaTable

    return DeltaTable(timeseries_path(root)).version() if DeltaTable.is_deltatable(str(timeseries_path(root))) else -1


def table_shape(root: Path, before: int) -> dict:
    """Rows and files of pi_timeseries after the run, and what the run's commits did (from the Delta log)."""
    from deltalake import DeltaTable

    table = DeltaTable(timeseries_path(root))
    actions = table.get_add_actions(flatten=True)
    commits = [c for c in table.history() if c["version"] > before]
    merges = [c.get("operationMetrics", {}) for c in commits if c["operation"] == "MERGE"]
    total = lambda key: sum(m.get(key, 0) for m in merges)  # noqa: E731
    return {
        "table_rows": sum(actions.column("num_records").to_pylist()),
        "table_files": actions.num_rows,
        "appends": sum(c["operation"] == "WRITE" for c in commits),
        "merges": len(merges),
        "merged_source_rows": total("num_source_rows"),
        "files_removed": total("num_target_files_removed"),
        "rows_copied": total("num_target_rows_copied"),
    }


def run_child(url: str, root: Path, args: argparse.Namespace, profile: str | None) -> dict:
    """One run in a fresh process: its peak RSS is its own, as for an hourly job."""
    command = [sys.executable, str(HERE), "--child-url", url, "--child-root", str(root)]
    command += ["--lookback", args.lookback, "--workers", str(args.workers), "--batch-size", str(args.batch_size)]
    command += ["--commit-rows", str(args.commit_rows)]
    command += ["--child-profile", profile] if profile else []
    env = dict(os.environ)
    if args.src:
        env["PYTHONPATH"] = str(Path(args.src).resolve())
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise SystemExit(f"run failed:\n{done.stderr[-4000:]}")
    return orjson.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=3000)
    parser.add_argument("--hours", type=int, default=8, help="hourly runs, the first at 01:00 (default 8)")
    parser.add_argument("--lookback", default="10m", help="extraction.lookback (default 10m)")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--commit-rows", type=int, default=1_000_000)
    parser.add_argument("--src", help="run the connector from this source tree (e.g. an older commit's src)")
    parser.add_argument("--root", help="keep the tables here (default: a temporary directory)")
    parser.add_argument("--profile", type=int, metavar="RUN", help="cProfile this run (1-based)")
    parser.add_argument("--tracemalloc", type=int, metavar="RUN", help="trace Python allocations of this run")
    parser.add_argument("--child-url", help=argparse.SUPPRESS)
    parser.add_argument("--child-root", help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_url:
        logging.basicConfig(level=logging.WARNING)  # a failed dataset's traceback reaches the parent's report
        print(orjson.dumps(one_run(args.child_url, Path(args.child_root), args)).decode())
        return
    with tempfile.TemporaryDirectory(prefix="steady-state-") as tmp:
        root = Path(args.root) if args.root else Path(tmp)
        source = args.src or "this tree"
        print(
            f"{args.tags} tags, {args.hours} hourly runs from {iso(DAY)}, lookback {args.lookback}, "
            f"workers {args.workers}, source: {source}"
        )
        print(
            "run  now                   seconds      values     values/s  peak RSS   sink s  table rows  files"
            "  appends/MERGEs  MERGEd rows  files rewritten  rows copied"
        )
        runs = []
        for hour in range(1, args.hours + 1):
            now = DAY + timedelta(hours=hour)
            profile = "cprofile" if args.profile == hour else "tracemalloc" if args.tracemalloc == hour else None
            proc, url = start_simulator(args.tags, now)
            try:
                run = run_child(url, root, args, profile)
            finally:
                proc.terminate()
                proc.wait(timeout=10)
            runs.append(run)
            print(
                f"{hour:>3}  {iso(now)}  {run['seconds']:>7.1f}  {run['values']:>10,}  "
                f"{run['values'] / run['seconds']:>11,.0f}  {run['peak_mb']:>6,.0f} MB  {run['merge_seconds']:>7.1f}  "
                f"{run['table_rows']:>10,}  {run['table_files']:>5}  {run['appends']:>7}/{run['merges']:<6}  "
                f"{run['merged_source_rows']:>11,}  {run['files_removed']:>15}  "
                f"{run['rows_copied']:>11,}",
                flush=True,
            )
            if "profile" in run:
                print(run["profile"])
        cost = [r["seconds"] / max(r["values"], 1) for r in runs]
        line = f"steady-state ratio (seconds per value, last run / run 1): {cost[-1] / cost[0]:.2f}"
        if len(runs) > 2:
            line += f"; last / run 2: {cost[-1] / cost[1]:.2f}"
        peaks = [r["peak_mb"] for r in runs]
        print(f"{line}; peak RSS run 1 {peaks[0]:,.0f} MB, max {max(peaks):,.0f} MB, last {peaks[-1]:,.0f} MB")


if __name__ == "__main__":
    main()
