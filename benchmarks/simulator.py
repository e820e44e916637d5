"""How fast the PI Web API simulator serves recorded values to one client.

Starts `osipi-connector simulate` in its own process (so client and server do not share a GIL), then one
client with a keep-alive session reads 150,000-value windows (the server cap) from many tags and parses
every body with orjson. Prints values/s, MB/s, request latency p50/p99, the server's CPU µs per value
(from /proc) and its peak RSS; then the server CPU of /batch requests as the connector sends them
(100 tags × 24 h, its selectedFields).

Baselines in the same run, in process on the same values: the previous per-value encoder (a bytes
object per timestamp, number and tail, joined; still used under `jsonfast.ROWS_MIN` values) and the
obvious way (a dict per value, `json.dumps`).

    .venv/bin/python benchmarks/simulator.py [--requests 40] [--tags 1000]

`--compare-src DIR` also serves the same requests from another source tree (e.g. an older commit:
`git archive REV src | tar -x -C /tmp/old`, then `--compare-src /tmp/old/src`), alternating rounds
with the current tree on one connection, and prints the ratio of the medians: on a shared machine
that ratio is the trustworthy figure.

`--hourly` measures only the connector's hourly incremental run (issue 12): `--tags` tags × the last 70
minutes at 13:00 with pi_hourly's late/edit delays, 100 tags per work unit, maxCount and the rounds that
read on from a full page as `extract.timeseries.fetch_recorded` makes them; server CPU µs per value, per
tree the median over `--rounds` server starts of the best of 3 runs (with `--compare-src`, alternating).

    .venv/bin/python benchmarks/simulator.py --hourly --tags 2000 --compare-src /tmp/old/src
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
import requests

from osipi_connector.extract.timeseries import SELECTED_FIELDS
from osipi_connector.piwebapi.pitime import datetime_to_ticks, format_ticks, parse_iso
from osipi_connector.simulator import jsonfast
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.core import Simulator
from osipi_connector.simulator.values import ValueModel

NOW = "2025-03-01T00:00:00Z"


def start_server(
    tags: int, src: str | None = None, now: str = NOW, options: tuple[str, ...] = ()
) -> tuple[subprocess.Popen, str]:
    """The simulator in its own process (clock at `now`, extra command `options`); from the source tree
    `src` when given."""
    cmd = [sys.executable, "-m", "osipi_connector.cli", "simulate", "--port", "0", "--tags", str(tags)]
    cmd += ["--now", now, "--rate-limit", "0", *options]
    env = {**os.environ, "PYTHONPATH": src} if src else None
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline()
    if "http" not in line:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return proc, line.split()[-1]


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def server_cpu(pid: int) -> float:
    """User + system CPU seconds of the server process."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dense_points(session: requests.Session, url: str, count: int) -> list[str]:
    """WebIDs of numeric points sampled every few seconds (windows of 150,000 values exist)."""
    points_url = session.get(f"{url}/dataservers").json()["Items"][0]["Links"]["Points"]
    points = session.get(points_url, params={"maxCount": 100_000}).json()["Items"]
    web_ids = [p["WebId"] for p in points if p["PointType"] in ("Float32", "Float64", "Int32")]
    return web_ids[:count]


def serve_benchmark(url: str, n_requests: int, parse: bool, connections: int = 1, pid: int | None = None) -> dict:
    """One client reading 150,000-value windows over `connections` keep-alive connections (a connector
    uses a small pool); with `parse`, every body also goes through orjson."""
    local = threading.local()

    def fetch(web_id: str) -> tuple[int, int, float]:
        session = getattr(local, "session", None) or requests.Session()
        local.session = session
        start = time.perf_counter()
        body = session.get(f"{url}/streams/{web_id}/recorded", params=params).content
        count = len(orjson.loads(body)["Items"]) if parse else body.count(b'"Timestamp":')
        return count, len(body), time.perf_counter() - start

    with requests.Session() as session:
        web_ids = dense_points(session, url, n_requests)
    params = {"startTime": "2024-07-01T00:00:00Z", "endTime": NOW, "maxCount": 150_000}
    work = [web_ids[i % len(web_ids)] for i in range(n_requests)]
    with ThreadPoolExecutor(connections) as pool:
        list(pool.map(fetch, work[:connections]))  # warm-up: one request per connection
        cpu0 = server_cpu(pid) if pid else float("nan")
        t0 = time.perf_counter()
        results = list(pool.map(fetch, work))
        elapsed = time.perf_counter() - t0
        cpu = server_cpu(pid) - cpu0 if pid else float("nan")
    latencies = sorted(r[2] for r in results)
    values = sum(r[0] for r in results)
    return {
        "values": values,
        "values_per_s": values / elapsed,
        "mb_per_s": sum(r[1] for r in results) / elapsed / 1e6,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000,
        "server_us_per_value": cpu / values * 1e6,
    }


def batch_cpu(url: str, pid: int, tags: int, batch_size: int = 100) -> dict:
    """Server CPU per value of /batch requests of recorded values as the connector sends them
    (`batch_size` tags × the last 24 h each, its selectedFields)."""
    http = requests.Session()
    server = http.get(f"{url}/dataservers").json()["Items"][0]
    points = http.get(f"{url}/dataservers/{server['WebId']}/points", params={"maxCount": tags}).json()["Items"]
    query = f"startTime=*-24h&endTime=*&maxCount=150000&selectedFields={SELECTED_FIELDS}"
    values, cpu0, t0 = 0, server_cpu(pid), time.perf_counter()
    for start in range(0, len(points), batch_size):
        group = points[start : start + batch_size]
        body = {
            str(i): {"Method": "GET", "Resource": f"{url}/streams/{p['WebId']}/recorded?{query}"}
            for i, p in enumerate(group)
        }
        raw = http.post(f"{url}/batch", data=orjson.dumps(body), headers={"X-Requested-With": "bench"}).content
        values += raw.count(b'"Timestamp":')
    elapsed, cpu = time.perf_counter() - t0, server_cpu(pid) - cpu0
    return {"values": values, "values_per_s": values / elapsed, "server_us_per_value": cpu / values * 1e6}


# The hourly run (issue 12): the simulator at 13:00 with pi_hourly's late/edit delays (lookback 10 min),
# one sub-request per tag over the last 70 minutes (the hour plus the lookback), 100 tags per work unit.
HOURLY_NOW = "2025-03-01T13:00:00Z"
HOURLY_START = "2025-03-01T11:50:00Z"
HOURLY_OPTIONS = ("--late-delay", "60", "540", "--edit-delay", "300")


def hourly_points(url: str, tags: int) -> list[str]:
    http = requests.Session()
    server = http.get(f"{url}/dataservers").json()["Items"][0]
    points = http.get(f"{url}/dataservers/{server['WebId']}/points", params={"maxCount": tags}).json()["Items"]
    return [p["WebId"] for p in points]


def hourly_cpu(url: str, pid: int, web_ids: list[str], batch_size: int = 100) -> dict:
    """Server CPU per value of one hourly run's /batch requests, rounds as the connector makes them
    (`extract.timeseries.fetch_recorded`): per work unit of `batch_size` tags, maxCount = 100,000 values per
    answer / tags still reading (1,000 for a full unit), and a tag whose page is full reads on from its
    last timestamp in the next round. One connection; the client's parsing is not in the server's CPU."""
    http = requests.Session()
    values, cpu, t0 = 0, 0.0, time.perf_counter()
    for unit in range(0, len(web_ids), batch_size):
        pending = dict.fromkeys(web_ids[unit : unit + batch_size], HOURLY_START)
        while pending:
            count = min(150_000, max(100_000 // len(pending), 100))
            keys = list(pending)
            body = {
                str(i): {
                    "Method": "GET",
                    "Resource": f"{url}/streams/{w}/recorded?startTime={pending[w]}&endTime={HOURLY_NOW}"
                    f"&maxCount={count}&selectedFields={SELECTED_FIELDS}",
                }
                for i, w in enumerate(keys)
            }
            cpu0 = server_cpu(pid)
            raw = http.post(f"{url}/batch", data=orjson.dumps(body), headers={"X-Requested-With": "bench"}).content
            cpu += server_cpu(pid) - cpu0
            answers = orjson.loads(raw)
            pending = {}
            for i, w in enumerate(keys):
                items = answers[str(i)]["Content"]["Items"]
                values += len(items)
                if len(items) >= count:  # full page: on from the last timestamp (its values come again)
                    last = items[-1]["Timestamp"]
                    values -= sum(1 for item in items if item["Timestamp"] == last)
                    pending[w] = last
    elapsed = time.perf_counter() - t0
    return {"values": values, "values_per_s": values / elapsed, "server_us_per_value": cpu / values * 1e6}


def compare_hourly(tags: int, other_src: str | None, rounds: int, repeats: int = 3) -> dict:
    """Server CPU µs per value of the hourly run's /batch requests: per tree, the median over `rounds`
    alternating server starts of the best of `repeats` runs in each (the first run warms the caches)."""
    trees = [("this tree", None)] + ([("other tree", other_src)] if other_src else [])
    results: dict[str, list[float]] = {label: [] for label, _ in trees}
    values = 0
    for _ in range(rounds):
        for label, src in reversed(trees):
            proc, url = start_server(tags, src, HOURLY_NOW, HOURLY_OPTIONS)
            try:
                web_ids = hourly_points(url, tags)
                runs = [hourly_cpu(url, proc.pid, web_ids) for _ in range(repeats)]
            finally:
                proc.terminate()
                proc.wait(timeout=10)
            values = runs[0]["values"]
            results[label].append(min(r["server_us_per_value"] for r in runs))
    return {"values": values, **{label: statistics.median(v) for label, v in results.items()}}


@contextlib.contextmanager
def previous_encoder():
    """Every answer through the per-value encoder (the one before the byte matrix)."""
    saved, jsonfast.ROWS_MIN = jsonfast.ROWS_MIN, sys.maxsize
    try:
        yield
    finally:
        jsonfast.ROWS_MIN = saved


def encoder_ratio(n_windows: int = 5) -> dict:
    """Values/s of the simulator's encoder vs a dict-per-value json.dumps baseline, same values."""
    sim = Simulator(SimConfig(seed=42, tags=200))
    model = ValueModel(sim.config)
    now = datetime_to_ticks(parse_iso(NOW))
    windows = []
    for index in range(200):
        point = sim.points.point(index)
        if point.point_type in ("Float32", "Float64"):
            windows.append((point, model.window(point, point.created_ticks, now, now, 150_000)))
        if len(windows) == n_windows:
            break
    total = sum(len(events) for _, events in windows)
    fast = previous = float("inf")
    for _ in range(3):  # best of 3 (CPU time) each, alternating
        t0 = time.process_time()
        for point, events in windows:
            b"".join(jsonfast.encode_items_chunked(point, events))
        fast = min(fast, time.process_time() - t0)
        with previous_encoder():
            t0 = time.process_time()
            for point, events in windows:
                b"".join(jsonfast.encode_items_chunked(point, events))
            previous = min(previous, time.process_time() - t0)
    t0 = time.perf_counter()
    for point, events in windows:
        items = [
            {
                "Timestamp": format_ticks(t),
                "Value": v,
                "UnitsAbbreviation": point.units,
                "Good": s == 0,
                "Questionable": bool(q),
                "Substituted": bool(sub),
                "Annotated": bool(a),
            }
            for t, v, s, q, sub, a in zip(
                events.ticks.tolist(),
                events.value.tolist(),
                events.system.tolist(),
                events.questionable.tolist(),
                events.substituted.tolist(),
                events.annotated.tolist(),
            )
        ]
        json.dumps(items)
    naive = time.perf_counter() - t0
    return {
        "fast_values_per_s": total / fast,
        "previous_values_per_s": total / previous,
        "naive_values_per_s": total / naive,
        "previous_ratio": previous / fast,
        "ratio": naive / fast,
    }


def compare(tags: int, n_requests: int, other_src: str, rounds: int = 3) -> dict:
    """Medians over alternating rounds, this tree vs `other_src`: values/s on one connection, and the
    server's CPU µs per value for those requests and for the connector's /batch requests."""
    labels = ("this tree", "other tree")
    measures = ("values_per_s", "server_us_per_value", "batch_us_per_value")
    results: dict[str, dict[str, list[float]]] = {label: {m: [] for m in measures} for label in labels}
    for _ in range(rounds):
        for label, src in (("other tree", other_src), ("this tree", None)):
            proc, url = start_server(tags, src)
            try:
                run = serve_benchmark(url, n_requests, parse=False, pid=proc.pid)
                batch = batch_cpu(url, proc.pid, min(tags, 400))
            finally:
                proc.terminate()
                proc.wait(timeout=10)
            results[label]["values_per_s"].append(run["values_per_s"])
            results[label]["server_us_per_value"].append(run["server_us_per_value"])
            results[label]["batch_us_per_value"].append(batch["server_us_per_value"])
    return {label: {m: statistics.median(v) for m, v in results[label].items()} for label in labels}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--tags", type=int, default=1000)
    parser.add_argument("--compare-src", help="another source tree to serve the same requests from (A/B)")
    parser.add_argument(
        "--hourly",
        action="store_true",
        help="only the hourly run's /batch requests (--tags tags × 70 min, 100 per POST): server CPU µs/value",
    )
    parser.add_argument("--rounds", type=int, default=3, help="server starts per tree (--hourly)")
    args = parser.parse_args()
    if args.hourly:
        result = compare_hourly(args.tags, args.compare_src, args.rounds)
        print(f"machine: {platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}")
        print(
            f"hourly run: {args.tags:,} tags × 70 min to {HOURLY_NOW}, 100 tags per work unit, {result['values']:,} "
            "values; "
            f"server CPU, median of {args.rounds} starts (best of 3 runs each):"
        )
        print(f"  this tree                {result['this tree']:.3f} µs/value")
        if args.compare_src:
            other = result["other tree"]
            print(f"  {args.compare_src:<24} {other:.3f} µs/value = {other / result['this tree']:.2f}x this tree")
        return
    proc, url = start_server(args.tags)
    try:
        runs = [
            ("1 connection, body read", serve_benchmark(url, args.requests, parse=False, pid=proc.pid)),
            ("1 connection, + parse", serve_benchmark(url, args.requests, parse=True)),
            ("2 connections, body read", serve_benchmark(url, args.requests, parse=False, connections=2)),
            ("2 connections, + parse", serve_benchmark(url, args.requests, parse=True, connections=2)),
        ]
        batch = batch_cpu(url, proc.pid, args.tags)
        rss = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    enc = encoder_ratio()
    print(f"machine: {platform.machine()} {os.cpu_count()} cpu, Python {platform.python_version()}")
    print(f"one client, {args.requests} requests of up to 150,000 values (MaxReturnedItemsPerCall)")
    for label, run in runs:
        print(
            f"  {label:<24} {run['values_per_s']:>12,.0f} values/s  {run['mb_per_s']:6.1f} MB/s  "
            f"p50 {run['p50_ms']:.0f} ms  p99 {run['p99_ms']:.0f} ms per request"
        )
    print(f"  server CPU, 1 connection {runs[0][1]['server_us_per_value']:>12.3f} µs/value")
    print(
        f"/batch of 100 tags × 24 h (the connector's requests), {batch['values']:,} values: "
        f"{batch['values_per_s']:,.0f} values/s, server CPU {batch['server_us_per_value']:.3f} µs/value"
    )
    print(f"  server peak RSS          {rss:,.0f} MB")
    print("encoder in process, same values:")
    print(f"  byte matrix (jsonrows)   {enc['fast_values_per_s']:>12,.0f} values/s")
    print(f"  per-value (previous)     {enc['previous_values_per_s']:>12,.0f} values/s")
    print(f"  ratio to previous        {enc['previous_ratio']:>12.2f}x")
    print(f"  dict + json.dumps        {enc['naive_values_per_s']:>12,.0f} values/s (baseline)")
    print(f"  ratio to dicts           {enc['ratio']:>12.1f}x")
    if args.compare_src:
        ab = compare(args.tags, args.requests, args.compare_src)
        this, other = ab["this tree"], ab["other tree"]
        print(f"median of 3 alternating rounds, this tree vs {args.compare_src}:")
        print(
            f"  1 connection, body read  {this['values_per_s']:>12,.0f} vs {other['values_per_s']:,.0f} values/s"
            f" = {this['values_per_s'] / other['values_per_s']:.2f}x"
        )
        for key, what in (("server_us_per_value", "1 connection"), ("batch_us_per_value", "/batch 100 × 24 h")):
            print(
                f"  server CPU, {what:<18} {this[key]:.3f} vs {other[key]:.3f} µs/value"
                f" = {other[key] / this[key]:.2f}x less"
            )


if __name__ == "__main__":
    main()
