"""End-to-end extraction speed: PI Web API simulator (own process) -> PILakeflowConnector -> local Delta.

Prints values/s end to end, against a floor measured in the same run: parsing the same kind of JSON bytes
(/batch answers of recorded values) into the Arrow table, with no network and no Delta, by the connector's
own path (`recorded_scan.scan_batch`: bytes -> NumPy columns) and, as a second baseline, by the orjson path
it replaced (one dict per value), so the gain shows in one run. The ratio says how
much the connector loses to HTTP, threads and MERGE; peak RSS per window length shows memory stays flat
as the window grows (units are bounded by batch_size × max_window, commits by commit_rows).

    .venv/bin/python benchmarks/pi_extract.py --tags 2000 --hours 24        # the target case (slow on 2 cores)
    .venv/bin/python benchmarks/pi_extract.py --tags 300 --hours 6 12 24   # quicker, memory vs window
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import requests

from osipi_connector import PILakeflowConnector
from osipi_connector.config import PerformanceConfig
from osipi_connector.extract.recorded_scan import scan_batch
from osipi_connector.extract.timeseries import SELECTED_FIELDS, TagWindow, _Columns
from osipi_connector.lake.delta_sink import DeltaSink
from osipi_connector.lake.sink import WriteResult
from osipi_connector.piwebapi.pitime import format_datetime

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int | str = "self") -> float:
    """User + system CPU seconds of a process (and its reaped children), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))  # utime stime cutime cstime
    return ticks / os.sysconf("SC_CLK_TCK")


def start_simulator(tags: int, now: datetime = NOW, *options: str) -> tuple[subprocess.Popen, str]:
    """`osipi-connector simulate` with its clock at `now` on a free 127.0.0.1 port, plus any other `options`
    of the command: (process, URL)."""
    exe = Path(sys.executable).parent / "osipi-connector"
    args = [str(exe), "simulate", "--host", "127.0.0.1", "--port", "0", "--tags", str(tags)]
    args += ["--now", format_datetime(now), "--rate-limit", "0", *options]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline() if proc.stdout else ""
    if "http" not in line:
        proc.kill()
        raise SystemExit(f"the simulator did not start: {line!r}")
    return proc, line.split()[-1]


class TimedSink(DeltaSink):
    """DeltaSink that adds up the seconds spent in MERGE, to split the run into fetch+parse and write."""

    merge_seconds = 0.0

    def merge(self, spec, data, **hints):  # same signature as DeltaSink.merge
        started = time.perf_counter()
        try:
            return super().merge(spec, data, **hints)
        finally:
            self.merge_seconds += time.perf_counter() - started


class DiscardTimeseries(TimedSink):
    """Writes everything but the timeseries rows: isolates fetch + parse (and their memory) from MERGE."""

    def merge(self, spec, data, **hints):
        if spec.name == "pi_timeseries":
            return WriteResult(inserted=data.num_rows, updated=0)
        return super().merge(spec, data, **hints)


def end_to_end(url: str, tags: int, hours: float, args: argparse.Namespace, root: Path) -> dict:
    config = {
        "pi_web_api": {"url": url, "auth_type": "anonymous"},
        "extraction": {
            "name_filter": "*",
            "mode": "full",
            "start_date": format_datetime(NOW - timedelta(hours=hours)),
            "end_date": format_datetime(NOW),
            "batch_size": args.batch_size,
            "max_count_per_tag": 150_000,
        },
        "performance": {"workers": args.workers, "max_window": args.max_window, "commit_rows": args.commit_rows},
        "local": {"lakehouse_root": str(root)},
    }
    started = time.perf_counter()
    sink = DiscardTimeseries(root) if args.no_write else TimedSink(root)
    result = PILakeflowConnector(config, sink=sink).run(datasets=["tags", "timeseries"])
    seconds = time.perf_counter() - started
    rows = result.rows.get("pi_timeseries", 0)
    assert result.status == "success", result.errors
    assert result.tags_requested == tags
    return {
        "rows": rows,
        "seconds": seconds,
        "values_per_s": rows / seconds,
        "peak_mb": peak_rss_mb(),
        "merge_seconds": sink.merge_seconds,
        "cpu_seconds": cpu_seconds(),
    }


def parse_floor(url: str, batch_size: int, hours: float, rounds: int = 3) -> dict:
    """Parse /batch bodies of recorded values (fetched once) into Arrow, as the connector does per unit:
    with the scanner (the connector's path) and with orjson dicts (the path before it); best of `rounds`,
    CPU time of this thread."""
    http = requests.Session()
    server = http.get(f"{url}/dataservers").json()["Items"][0]
    points = http.get(f"{url}/dataservers/{server['WebId']}/points", params={"maxCount": batch_size}).json()["Items"]
    start, end = NOW - timedelta(hours=min(hours, 6)), NOW
    windows = {str(i): TagWindow(p["WebId"], p["Name"], start, end) for i, p in enumerate(points)}
    query = f"startTime={format_datetime(start)}&endTime={format_datetime(end)}&maxCount=150000"
    body = {
        k: {"Method": "GET", "Resource": f"{url}/streams/{w.webid}/recorded?{query}&selectedFields={SELECTED_FIELDS}"}
        for k, w in windows.items()
    }
    raw = http.post(f"{url}/batch", data=orjson.dumps(body), headers={"X-Requested-With": "bench"}).content
    out: dict = {"bytes": len(raw)}
    for name, decode in (("scan", scan_batch), ("orjson", orjson.loads)):
        best, rows = 0.0, 0
        for _ in range(rounds):
            started = time.thread_time()
            answer = decode(raw)
            columns = _Columns()
            for key, sub in answer.items():
                columns.add(windows[key], sub["Content"].get("UnitsAbbreviation", ""), sub["Content"]["Items"])
            table = columns.table("bench", NOW)
            seconds = max(time.thread_time() - started, 1e-9)
            rows = table.num_rows
            best = max(best, rows / seconds)
            del answer, columns, table
        out[name] = best
        out["rows"] = rows
    out["values_per_s"] = out["scan"]
    return out


def run_child(url: str, hours: float, args: argparse.Namespace) -> dict:
    """One end-to-end run in a fresh process, so its peak RSS is its own (freed memory is not given back)."""
    command = [sys.executable, __file__, "--child-url", url, "--tags", str(args.tags), "--hours", str(hours)]
    command += ["--batch-size", str(args.batch_size), "--workers", str(args.workers)]
    command += ["--max-window", args.max_window, "--commit-rows", str(args.commit_rows)]
    command += ["--no-write"] if args.no_write else []
    out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return orjson.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tags", type=int, default=2000)
    parser.add_argument("--hours", type=float, nargs="+", default=[24.0])
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--max-window", default="6h", help="performance.max_window")
    parser.add_argument(
        "--commit-rows", type=int, default=PerformanceConfig().commit_rows, help="performance.commit_rows"
    )
    parser.add_argument(
        "--no-write", action="store_true", help="drop timeseries rows instead of MERGE (isolates fetch)"
    )
    parser.add_argument("--child-url", help=argparse.SUPPRESS)  # internal: one end-to-end run, JSON on stdout
    args = parser.parse_args()
    if args.child_url:
        with tempfile.TemporaryDirectory(prefix="pi-extract-bench-") as tmp:
            print(orjson.dumps(end_to_end(args.child_url, args.tags, args.hours[0], args, Path(tmp))).decode())
        return
    proc, url = start_simulator(args.tags)
    try:
        floor = parse_floor(url, args.batch_size, max(args.hours))
        print(
            f"floor: parse /batch JSON -> Arrow in process (CPU time): {floor['scan']:,.0f} values/s by the scanner, "
            f"{floor['orjson']:,.0f} by orjson dicts (× {floor['scan'] / floor['orjson']:.2f}) "
            f"({floor['rows']:,} values, {floor['bytes'] / 1e6:.1f} MB body)"
        )
        for hours in args.hours:
            simulator_cpu = cpu_seconds(proc.pid)
            e2e = run_child(url, hours, args)
            simulator_cpu = cpu_seconds(proc.pid) - simulator_cpu
            what = "fetch + parse only (no MERGE)" if args.no_write else "end to end"
            print(
                f"{what}: {args.tags} tags × {hours:g} h = {e2e['rows']:,} values in {e2e['seconds']:.1f} s = "
                f"{e2e['values_per_s']:,.0f} values/s; ratio to floor {e2e['values_per_s'] / floor['values_per_s']:.2f}; "
                f"peak RSS {e2e['peak_mb']:,.0f} MB; MERGE {e2e['merge_seconds']:.1f} s of it"
            )
            rows = max(e2e["rows"], 1)
            print(
                f"  CPU: connector {e2e['cpu_seconds']:.1f} s ({e2e['cpu_seconds'] / rows * 1e6:.2f} µs/value), "
                f"simulator {simulator_cpu:.1f} s ({simulator_cpu / rows * 1e6:.2f} µs/value), "
                f"{os.cpu_count()} cores × {e2e['seconds']:.1f} s wall = {os.cpu_count() * e2e['seconds']:.1f} core-s"
            )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
