"""`make demo`: the embedded default end to end, with nothing but this package.

Starts the PI Web API simulator on a free 127.0.0.1 port and walks it the way a connector does: data
server, points, recorded values through the batch controller, the AF hierarchy and event frames. The
extraction job (bronze Delta tables) replaces this walk-through once it lands.
"""

from __future__ import annotations

import sys
from collections import Counter
from datetime import datetime, timezone

import requests

from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.server import running_simulator

NOW = datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)


def tour(base: str, session: requests.Session) -> None:
    server = session.get(f"{base}/dataservers").json()["Items"][0]
    print(f"data server   {server['Name']}  ({server['WebId'][:16]}...)")
    points = session.get(server["Links"]["Points"], params={"maxCount": 10_000}).json()["Items"]
    types = Counter(p["PointType"] for p in points)
    print(f"points        {len(points)}  " + ", ".join(f"{k} {v}" for k, v in sorted(types.items())))

    chosen = [next(p for p in points if p["PointType"] == t) for t in sorted(types)]
    batch = {
        p["Name"]: {
            "Method": "GET",
            "Resource": f"{base}/streams/{p['WebId']}/recorded?startTime=*-1h&endTime=*&maxCount=150000",
        }
        for p in chosen
    }
    answer = session.post(f"{base}/batch", json=batch, headers={"X-Requested-With": "XMLHttpRequest"})
    print(f"batch         HTTP {answer.status_code}, one hour of recorded values per point type:")
    for name, sub in answer.json().items():
        items = sub.get("Content", {}).get("Items", [])
        last = items[-1] if items else {}
        print(f"  {name:<14} {sub['Status']}  {len(items):>5} values, last {last.get('Timestamp')} = {last.get('Value')}")

    assets = session.get(f"{base}/assetservers").json()["Items"]
    if assets:
        databases = session.get(assets[0]["Links"]["Databases"]).json()["Items"]
        db = databases[0]
        elements = session.get(
            db["Links"]["Elements"], params={"searchFullHierarchy": "true", "maxCount": 100_000}
        ).json()["Items"]
        depth = max(e["Path"].count("\\") for e in elements) - 3
        print(f"AF database   {db['Path']}: {len(elements)} elements, {depth} levels")
        frames = session.get(
            db["Links"]["EventFrames"], params={"startTime": "*-1d", "endTime": "*", "maxCount": 1000}
        ).json()["Items"]
        open_frames = [f for f in frames if f["EndTime"].startswith("9999")]
        print(f"event frames  {len(frames)} overlapping the last day, {len(open_frames)} still in progress")


def main() -> int:
    config = SimConfig(seed=42, tags=1000, now=NOW)
    with running_simulator(config) as sim, requests.Session() as session:
        print(f"PI Web API simulator at {sim.url} (seed {config.seed}, now {NOW.isoformat()})")
        tour(sim.url, session)
    return 0


if __name__ == "__main__":
    sys.exit(main())
