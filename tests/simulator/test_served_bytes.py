"""The simulator serves the same bytes as before its speed-ups: SHA-256 of whole answers against digests
recorded from the tree before them (session 6, commit cfc407b).

The requests are the connector's hourly /batch of recorded windows (every point type, late data, edits,
deletions, sub-second timestamps) and the other value endpoints built on the same value model. After a
deliberate change to what the simulator serves, record the digests again and say why in the commit:

    PYTHONPATH=src .venv/bin/python tests/simulator/test_served_bytes.py > tests/simulator/served_bytes.json
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import datetime, timezone
from pathlib import Path

import orjson
import pytest

from osipi_connector.extract.timeseries import SELECTED_FIELDS
from osipi_connector.simulator.app import SimulatorApp
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.core import Simulator
from osipi_connector.simulator.http import Request

DIGESTS = Path(__file__).with_name("served_bytes.json")
BASE = "http://127.0.0.1:8000/piwebapi"
NOW = datetime(2025, 3, 1, 13, tzinfo=timezone.utc)
TAGS = 240
CONFIGS = {
    # the hourly benchmark's simulator (pi_hourly.py, lookback 10 min): late data and edits inside the hour
    "hourly": SimConfig(seed=42, tags=TAGS, now=NOW, late_delay_s=(60.0, 540.0), edit_delay_s=300.0),
    # the defaults, plus deletions
    "deletes": SimConfig(seed=7, tags=TAGS, now=NOW, delete_share=0.02, delete_delay_s=1200.0),
}


def _requests(sim: Simulator) -> dict[str, tuple[str, str, bytes]]:
    """name -> (method, URL below /piwebapi, body)."""
    webids = [sim.points.webid(i) for i in range(TAGS)]
    cases: dict[str, tuple[str, str, bytes]] = {}
    windows = {
        "hourly": f"startTime=2025-03-01T11:50:00Z&endTime=2025-03-01T13:00:00Z&maxCount=1000&selectedFields={SELECTED_FIELDS}",
        "all-fields": "startTime=2025-03-01T11:50:00.1234567Z&endTime=*&maxCount=1000",
        "truncated": "startTime=*-3h&endTime=*&maxCount=7&selectedFields=Items.Timestamp;Items.Value",
        "descending": "startTime=*&endTime=*-2h&maxCount=500",
    }
    for name, query in windows.items():
        for start in range(0, TAGS, 100):
            body = {
                str(i): {"Method": "GET", "Resource": f"{BASE}/streams/{w}/recorded?{query}"}
                for i, w in enumerate(webids[start : start + 100])
            }
            cases[f"batch {name} {start}"] = ("POST", "/batch", orjson.dumps(body))
    day = "startTime=2025-02-28T00:00:00Z&endTime=*&maxCount=150000"
    for i in range(0, TAGS, 23):
        w = webids[i]
        cases[f"recorded day {i}"] = ("GET", f"/streams/{w}/recorded?{day}", b"")
        cases[f"recorded day fields {i}"] = (
            "GET",
            f"/streams/{w}/recorded?{day}&selectedFields=Items.Timestamp;Items.Value;Items.Good",
            b"",
        )
        cases[f"recorded outside {i}"] = ("GET", f"/streams/{w}/recorded?startTime=*-2h&boundaryType=Outside", b"")
        cases[f"recorded interpolated {i}"] = (
            "GET",
            f"/streams/{w}/recorded?startTime=*-2h&endTime=*-1h&boundaryType=Interpolated",
            b"",
        )
        cases[f"interpolated {i}"] = ("GET", f"/streams/{w}/interpolated?startTime=*-6h&interval=7m", b"")
        cases[f"plot {i}"] = ("GET", f"/streams/{w}/plot?startTime=*-1d&intervals=40", b"")
        cases[f"summary {i}"] = (
            "GET",
            f"/streams/{w}/summary?startTime=*-1d&summaryType=All&summaryDuration=1h",
            b"",
        )
        cases[f"value {i}"] = ("GET", f"/streams/{w}/value?time=*-37m", b"")
        cases[f"end {i}"] = ("GET", f"/streams/{w}/end", b"")
        cases[f"recordedattime {i}"] = ("GET", f"/streams/{w}/recordedattime?time=*-1h&retrievalMode=After", b"")
    server = sim.points.server_webid
    cases["points"] = ("GET", f"/dataservers/{server}/points?maxCount=1000", b"")
    cases["points page"] = ("GET", f"/dataservers/{server}/points?startIndex=150&maxCount=200&nameFilter=*", b"")
    some = "&".join(f"webId={w}" for w in webids[:40:3])
    cases["streamsets recorded"] = ("GET", f"/streamsets/recorded?{some}&startTime=*-90m", b"")
    cases["streamsets value"] = ("GET", f"/streamsets/value?{some}", b"")
    return cases


def served(config: SimConfig) -> dict[str, str]:
    """name -> "status sha256 length" of every answer, in process through the ASGI app's request path."""
    app = SimulatorApp(Simulator(config))
    out = {}
    for name, (method, path, body) in _requests(app.sim).items():
        headers = {"x-requested-with": "test"} if method == "POST" else {}
        response = app.respond(Request.from_url(method, path, base_url=BASE, headers=headers, body=body))
        payload = b"".join(response.pieces()) if response.body is not None else b""
        assert payload == response.encode()  # streamed and whole answers agree
        out[name] = f"{response.status} {hashlib.sha256(payload).hexdigest()} {len(payload)}"
    return out


@pytest.mark.parametrize("config_name", sorted(CONFIGS))
def test_same_bytes_as_before_the_speedups(config_name: str) -> None:
    expected = json.loads(DIGESTS.read_text())[config_name]
    got = served(CONFIGS[config_name])
    assert got.keys() == expected.keys()
    changed = [name for name in got if got[name] != expected[name]]
    assert not changed, f"{len(changed)} answers differ from the recorded ones, e.g. {changed[:5]}"


if __name__ == "__main__":
    json.dump({name: served(config) for name, config in CONFIGS.items()}, sys.stdout, indent=1, sort_keys=True)
    print()
