"""Connector CPU per fetched value after the bytes arrive: recorded /batch answers -> `pi_timeseries` table.

Replays /batch answers captured from the simulator (the hourly job's shape: `--batch-size` tags × 70 min —
an hour plus the 10 min lookback — late and edited data on) through the connector's own fetch path,
`extract.timeseries.fetch_recorded` with a real `PIWebAPIClient` whose transport hands back the captured
bytes instead of reading a socket: the 207 decode (`recorded_scan`), the per-tag paging logic and the round
table. No HTTP, no Delta, no threads. Measured: CPU time of the thread, best of `--rounds`, in CPU-seconds
per million values; each `--src` tree runs in its own process, alternating, so old and new are measured in
the same minutes.

    .venv/bin/python benchmarks/pi_parse.py capture /tmp/answers --tags 3000           # once (simulator)
    .venv/bin/python benchmarks/pi_parse.py replay /tmp/answers --src /tmp/old/src src  # old vs new
    .venv/bin/python benchmarks/pi_parse.py fetch - --tags 3000 --src /tmp/old/src src     # with HTTP

`fetch` is the fetch side of a run as the executor drives it: the same units fetched from a live simulator (its
own process, started once) by `--workers` threads sharing one client — HTTP, decode, paging, round tables —
measured as the CPU time of the whole fetching process (all threads, user + system) per value.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

NOW = datetime(2025, 3, 1, 13, 0, tzinfo=timezone.utc)
HERE = Path(__file__).resolve()


def capture(args: argparse.Namespace) -> None:
    """Fetch `--tags` tags through `fetch_recorded` (as a run does) and keep every /batch body it decoded."""
    import requests

    from osipi_connector.extract.recorded_scan import scan_batch
    from osipi_connector.extract.timeseries import TagWindow, fetch_recorded
    from osipi_connector.piwebapi.client import PIWebAPIClient
    from osipi_connector.piwebapi.settings import ClientSettings
    from pi_extract import start_simulator

    out = Path(args.directory)
    out.mkdir(parents=True, exist_ok=True)
    late = ["--late-delay", "60", "540", "--edit-delay", "300"]  # pi_hourly's delays for a 10 min lookback
    proc, url = start_simulator(args.tags, NOW, *late)
    bodies: list[bytes] = []

    class Recording(PIWebAPIClient):
        def batch(self, requests, *, decode=None):  # type: ignore[no-untyped-def]
            def keep(body: bytes) -> Any:
                bodies.append(body)
                return (decode or scan_batch)(body)

            return super().batch(requests, decode=keep)

    try:
        http = requests.Session()
        server = http.get(f"{url}/dataservers", timeout=30).json()["Items"][0]
        points = http.get(
            f"{url}/dataservers/{server['WebId']}/points", params={"maxCount": args.tags}, timeout=60
        ).json()["Items"]
        start = NOW - timedelta(minutes=70)
        units = []
        with Recording(ClientSettings(url=url, auth_type="anonymous")) as client:
            for i in range(0, len(points), args.batch_size):
                windows = [TagWindow(p["WebId"], p["Name"], start, NOW) for p in points[i : i + args.batch_size]]
                first = len(bodies)
                result = fetch_recorded(client, windows, max_count=args.max_count, run_id="capture", ingested_at=NOW)
                units.append(
                    {
                        "windows": [[w.webid, w.name] for w in windows],
                        "bodies": list(range(first, len(bodies))),
                        "rows": result.table.num_rows,
                    }
                )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    for i, body in enumerate(bodies):
        (out / f"{i:05d}.json").write_bytes(body)
    meta = {"start": (NOW - timedelta(minutes=70)).isoformat(), "end": NOW.isoformat(), "max_count": args.max_count}
    (out / "units.json").write_bytes(orjson.dumps({**meta, "units": units}))
    values = sum(u["rows"] for u in units)
    size = sum(len(b) for b in bodies)
    print(f"captured {len(units)} units, {len(bodies)} /batch answers, {values:,} values, {size / 1e6:.1f} MB in {out}")


def replay_child(args: argparse.Namespace) -> None:
    """One tree: every captured unit through `fetch_recorded`, `--rounds` times; JSON line on stdout."""
    from osipi_connector.extract import timeseries
    from osipi_connector.extract.timeseries import TagWindow, fetch_recorded
    from osipi_connector.piwebapi import transport
    from osipi_connector.piwebapi.client import PIWebAPIClient
    from osipi_connector.piwebapi.settings import ClientSettings

    folder = Path(args.directory)
    meta = orjson.loads((folder / "units.json").read_bytes())
    start, end = datetime.fromisoformat(meta["start"]), datetime.fromisoformat(meta["end"])
    bodies = {int(p.stem): p.read_bytes() for p in folder.glob("*.json") if p.stem.isdigit()}

    class Replay:
        """The transport's `send`, answering each POST with the next captured body."""

        def __init__(self) -> None:
            self.queue: list[bytes] = []

        def send(self, method, url, params=None, json_body=None, *, parse, accept=lambda r: r.ok):  # type: ignore[no-untyped-def]
            answer = transport.Answer(207, url, {"Content-Type": "application/json"}, self.queue.pop(0))
            return parse(answer)

        def sent_by_this_thread(self) -> int:
            return 0

        def close(self) -> None:
            pass

    client = PIWebAPIClient(ClientSettings(url="http://127.0.0.1:1/piwebapi", auth_type="anonymous"))
    replay = Replay()
    client._transport = replay  # type: ignore[assignment]
    units = [
        ([TagWindow(w, n, start, end) for w, n in u["windows"]], [bodies[i] for i in u["bodies"]], u["rows"])
        for u in meta["units"]
    ]
    times = []
    rows = 0
    for _ in range(args.rounds):
        rows = 0
        started = time.thread_time()
        for windows, answers, expected in units:
            replay.queue = list(answers)
            table = fetch_recorded(client, windows, max_count=meta["max_count"], run_id="r", ingested_at=end).table
            assert table.num_rows == expected, (table.num_rows, expected)
            rows += table.num_rows
            del table
        times.append(time.thread_time() - started)
    print(orjson.dumps({"times": times, "rows": rows, "module": timeseries.__file__}).decode())


def fetch_child(args: argparse.Namespace) -> None:
    """One tree: fetch every unit from the simulator at `args.url` with `--workers` threads; JSON line out."""
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from osipi_connector.extract.timeseries import TagWindow, fetch_recorded
    from osipi_connector.piwebapi.client import PIWebAPIClient
    from osipi_connector.piwebapi.settings import ClientSettings

    http = requests.Session()
    server = http.get(f"{args.url}/dataservers", timeout=30).json()["Items"][0]
    points = http.get(
        f"{args.url}/dataservers/{server['WebId']}/points", params={"maxCount": args.tags}, timeout=60
    ).json()["Items"]
    start = NOW - timedelta(minutes=70)
    units = [
        [TagWindow(p["WebId"], p["Name"], start, NOW) for p in points[i : i + args.batch_size]]
        for i in range(0, len(points), args.batch_size)
    ]
    import gc

    gc_time = {"s": 0.0, "n": [0, 0, 0], "t0": 0.0}

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            gc_time["t0"] = time.thread_time()
        else:
            gc_time["s"] += time.thread_time() - gc_time["t0"]
            gc_time["n"][info["generation"]] += 1

    if os.environ.get("PI_PARSE_GC_STATS"):
        gc.callbacks.append(on_gc)
    times, rows = [], 0
    with PIWebAPIClient(ClientSettings(url=args.url, auth_type="anonymous", max_connections=args.workers)) as client:

        def one(windows: list) -> int:
            got = fetch_recorded(client, windows, max_count=args.max_count, run_id="r", ingested_at=NOW)
            assert not got.failed, got.failed
            return got.table.num_rows

        with ThreadPoolExecutor(args.workers) as pool:
            list(pool.map(one, units[:2]))  # warm: imports, connections
            for _ in range(args.rounds):
                started = time.process_time()
                rows = sum(pool.map(one, units))
                times.append(time.process_time() - started)
    if os.environ.get("PI_PARSE_GC_STATS"):
        print("gc", gc_time, file=sys.stderr)
    print(orjson.dumps({"times": times, "rows": rows, "module": fetch_recorded.__code__.co_filename}).decode())


def fetch(args: argparse.Namespace) -> None:
    from pi_extract import start_simulator

    late = ["--late-delay", "60", "540", "--edit-delay", "300"]
    proc, url = start_simulator(args.tags, NOW, *late)
    try:
        compare(args, ["fetch-child", "-", "--url", url, "--tags", str(args.tags), "--workers", str(args.workers)])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def replay(args: argparse.Namespace) -> None:
    compare(args, ["replay-child", args.directory])


def compare(args: argparse.Namespace, child: list[str]) -> None:
    """Run `child` once per tree and repeat, alternating; print CPU-s per million values per tree."""
    trees = args.src or [str(HERE.parent.parent / "src")]
    results: dict[str, list[float]] = {tree: [] for tree in trees}
    rows = 0
    for _ in range(args.repeat):
        for tree in trees:
            env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(tree).resolve()), str(HERE.parent)])}
            command = [sys.executable, str(HERE), *child, "--rounds", str(args.rounds)]
            done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
            out = orjson.loads(done.stdout.strip().splitlines()[-1])
            assert str(Path(tree).resolve()) in out["module"], out["module"]
            results[tree] += out["times"]
            rows = out["rows"]
    print(
        f"{platform.machine()}, {os.cpu_count()} CPU, Python {platform.python_version()}, load "
        f"{os.getloadavg()[0]:.1f}; {rows:,} values per round, {args.repeat} processes × {args.rounds} rounds per tree"
    )
    base = min(results[trees[0]])
    for tree, times in results.items():
        best, median = min(times) / rows * 1e6, statistics.median(times) / rows * 1e6
        print(f"{tree:40s} best {best:.3f} CPU-s per M values (median {median:.3f})  × {base / min(times):.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("action", choices=["capture", "replay", "replay-child", "fetch", "fetch-child"])
    parser.add_argument("directory", help="where the captured answers are (capture writes them; fetch: -)")
    parser.add_argument("--tags", type=int, default=3000, help="capture, fetch: tags (default 3000)")
    parser.add_argument("--batch-size", type=int, default=100, help="capture, fetch: tags per unit (default 100)")
    parser.add_argument("--max-count", type=int, default=150_000, help="capture: maxCount per sub-request")
    parser.add_argument("--src", nargs="+", help="replay: source trees (first is the baseline; default this tree)")
    parser.add_argument("--rounds", type=int, default=3, help="replay: rounds per process (best counts)")
    parser.add_argument("--repeat", type=int, default=2, help="replay, fetch: processes per tree, alternating")
    parser.add_argument("--workers", type=int, default=4, help="fetch: threads (default 4)")
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    actions = {"capture": capture, "replay": replay, "replay-child": replay_child}
    actions |= {"fetch": fetch, "fetch-child": fetch_child}
    actions[args.action](args)


if __name__ == "__main__":
    main()
