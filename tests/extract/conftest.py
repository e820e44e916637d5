"""Fixtures of the extractor tests: a real PIWebAPIClient on the session simulator (over HTTP)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from osipi_connector.lake.schemas import TIMESERIES
from osipi_connector.lake.sink import Sink
from osipi_connector.piwebapi.client import PIWebAPIClient
from osipi_connector.piwebapi.settings import ClientSettings
from osipi_connector.simulator.server import RunningSimulator


def make_client(url: str) -> PIWebAPIClient:
    return PIWebAPIClient(ClientSettings(url=url, auth_type="anonymous"))


@pytest.fixture(scope="module")
def pi_client(simulator: RunningSimulator) -> Iterator[PIWebAPIClient]:
    with make_client(simulator.url) as client:
        yield client


@pytest.fixture(scope="module")
def names(simulator: RunningSimulator) -> dict[str, str]:
    """name -> WebID of two points of each point type (digital and string points included)."""
    server = requests.get(f"{simulator.url}/dataservers").json()["Items"][0]
    points = requests.get(f"{simulator.url}/dataservers/{server['WebId']}/points", params={"maxCount": 500}).json()
    chosen: dict[str, dict[str, str]] = {}
    for p in points["Items"]:
        group = chosen.setdefault(p["PointType"], {})
        if len(group) < 2:
            group[p["Name"]] = p["WebId"]
    return {name: webid for group in chosen.values() for name, webid in group.items()}


# --- timeseries / runner helpers (helper A) ----------------------------------------------------------------
# The source of truth is what the simulator serves for one tag over HTTP with a large maxCount; the tests
# compare the Delta tables with it, never with hard-coded numbers.
VALUE_COLUMNS = (
    "tag_webid",
    "timestamp",
    "value_seq",
    "value",
    "value_string",
    "digital_state_name",
    "digital_state_code",
    "digital_state_is_system",
    "good",
    "questionable",
    "substituted",
    "annotated",
)


def served_rows(url: str, webids: list[str], start: str, end: str) -> set[tuple]:
    """Every value the simulator serves per tag in [start, end], as rows shaped like VALUE_COLUMNS."""
    from datetime import datetime, timedelta, timezone

    import requests

    from osipi_connector.piwebapi.pitime import parse_pi_timestamp_ticks

    epoch = datetime(1970, 1, 1, tzinfo=timezone.utc)
    rows: set[tuple] = set()
    with requests.Session() as http:
        for webid in webids:
            answer = http.get(
                f"{url}/streams/{webid}/recorded", params={"startTime": start, "endTime": end, "maxCount": 150_000}
            )
            answer.raise_for_status()
            items = answer.json()["Items"]
            assert len(items) < 150_000, "window too large for a one-request truth"
            previous, seq = None, 0
            for item in items:
                seq = seq + 1 if item["Timestamp"] == previous else 0
                previous = item["Timestamp"]
                ts = epoch + timedelta(microseconds=parse_pi_timestamp_ticks(item["Timestamp"]) // 10)
                v = item["Value"]
                value = text = name = code = system = None
                if isinstance(v, dict):
                    name, code, system, value = v["Name"], v["Value"], v["IsSystem"], float(v["Value"])
                elif isinstance(v, str):
                    text = v
                else:
                    value = float(v)
                flags = (item["Good"], item["Questionable"], item["Substituted"], item["Annotated"])
                rows.add((webid, ts, seq, value, text, name, code, system, *flags))
    return rows


def table_rows(sink: Sink) -> list[tuple]:
    """The timeseries table's rows shaped like VALUE_COLUMNS (a list: duplicates would show)."""
    table = sink.read(TIMESERIES, columns=list(VALUE_COLUMNS))
    return list(zip(*(table[c].to_pylist() for c in VALUE_COLUMNS), strict=True))
