"""Client CPU per value to receive /batch answers of recorded values: the connector's transport vs requests' own read.

Starts `osipi-connector simulate` in its own process and POSTs the extractor's kind of /batch request (100 tags ×
6 h of recorded values, ~50 MB, chunked) again and again. Measured: CPU time of the client thread per value
(user + system: the kernel's copies out of the socket count too) for
  transport   `piwebapi.transport.Transport.send`, which reads the body in BODY_CHUNK_BYTES pieces
  baseline    a plain `requests.Session.post(...).content`, requests' 10 KiB pieces (what the transport did)
alternating rounds, best of each. No JSON parsing: only the HTTP body.

    .venv/bin/python benchmarks/http_body.py [--tags 100] [--hours 6] [--rounds 5]
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import timedelta

import orjson
import requests

from osipi_connector.extract.timeseries import SELECTED_FIELDS
from osipi_connector.piwebapi.pitime import format_datetime
from osipi_connector.piwebapi.settings import ClientSettings
from osipi_connector.piwebapi.transport import BODY_CHUNK_BYTES, CSRF_HEADER, Transport
from pi_extract import NOW, start_simulator


def batch_body(url: str, tags: int, hours: float) -> bytes:
    http = requests.Session()
    server = http.get(f"{url}/dataservers", timeout=30).json()["Items"][0]
    points = http.get(f"{server['Links']['Points']}", params={"maxCount": tags}, timeout=30).json()["Items"]
    query = f"startTime={format_datetime(NOW - timedelta(hours=hours))}&endTime={format_datetime(NOW)}&maxCount=150000"
    return orjson.dumps(
        {
            str(i): {
                "Method": "GET",
                "Resource": f"{url}/streams/{p['WebId']}/recorded?{query}&selectedFields={SELECTED_FIELDS}",
            }
            for i, p in enumerate(points)
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tags", type=int, default=100)
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    proc, url = start_simulator(max(args.tags, 100))
    try:
        body = batch_body(url, args.tags, args.hours)
        transport = Transport(ClientSettings(url=url, auth_type="anonymous"), None)
        plain = requests.Session()
        headers = {CSRF_HEADER: "XMLHttpRequest", "Content-Type": "application/json"}
        ways = {
            "transport": lambda: transport.send("POST", f"{url}/batch", json_body=body, parse=lambda a: a.content),
            "baseline": lambda: plain.post(f"{url}/batch", data=body, headers=headers, timeout=60).content,
        }
        values = orjson.loads(ways["baseline"]())
        values = sum(len(sub["Content"]["Items"]) for sub in values.values())
        best = dict.fromkeys(ways, float("inf"))
        size = 0
        for _ in range(args.rounds):
            for name, way in ways.items():
                started = time.thread_time()
                size = len(way())
                best[name] = min(best[name], time.thread_time() - started)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(
        f"{platform.machine()}, Python {platform.python_version()}, requests {requests.__version__}, load "
        f"{os.getloadavg()[0]:.1f}; /batch of {args.tags} tags × {args.hours:g} h = {values:,} values, "
        f"{size / 1e6:.1f} MB, best of {args.rounds}"
    )
    for name, seconds in best.items():
        piece = f"{BODY_CHUNK_BYTES >> 10} KiB" if name == "transport" else "10 KiB"
        print(
            f"{name:10s} ({piece:>8s} pieces) {seconds * 1e3:7.1f} ms CPU per answer = "
            f"{seconds / values * 1e6:.3f} µs/value  ×{best['baseline'] / seconds:5.2f}"
        )


if __name__ == "__main__":
    main()
