"""Recorded values into Arrow over HTTP: every value the simulator serves lands once, however it is paged."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

import pyarrow as pa
import pytest
import requests

from osipi_connector.extract.timeseries import TagWindow, fetch_recorded
from osipi_connector.piwebapi.client import PIWebAPIClient
from osipi_connector.piwebapi.pitime import format_datetime
from osipi_connector.plan import Tag, plan_units
from osipi_connector.simulator.server import RunningSimulator
from tests.conftest import FIXED_NOW
from tests.extract.conftest import VALUE_COLUMNS, make_client, served_rows

pytestmark = pytest.mark.integration
END = FIXED_NOW
START = END - timedelta(hours=3)


def rows_of(table: pa.Table) -> list[tuple]:
    return list(zip(*(table[c].to_pylist() for c in VALUE_COLUMNS), strict=True))


@pytest.fixture(scope="module")
def client(simulator: RunningSimulator) -> Iterator[PIWebAPIClient]:
    with make_client(simulator.url) as c:
        yield c


@pytest.fixture(scope="module")
def mixed(simulator: RunningSimulator) -> list[Tag]:
    """A few points of every type the simulator serves (Float32/64, Int32, Digital, String)."""
    server = requests.get(f"{simulator.url}/dataservers").json()["Items"][0]
    points = requests.get(f"{simulator.url}/dataservers/{server['WebId']}/points", params={"maxCount": 500}).json()
    chosen: dict[str, list[Tag]] = {}
    for p in points["Items"]:
        group = chosen.setdefault(p["PointType"], [])
        if len(group) < 2:
            group.append(Tag(p["WebId"], p["Name"]))
    assert {"Float32", "Float64", "Int32", "Digital", "String"} <= set(chosen)
    return [t for group in chosen.values() for t in group]


def fetch(client: PIWebAPIClient, windows: list[TagWindow], max_count: int):
    return fetch_recorded(client, windows, max_count=max_count, run_id="test", ingested_at=END)


def test_one_page_per_tag_equals_what_is_served(client, simulator, mixed) -> None:
    result = fetch(client, [TagWindow(t.webid, t.name, START, END) for t in mixed], 150_000)
    served = served_rows(simulator.url, [t.webid for t in mixed], format_datetime(START), format_datetime(END))
    got = rows_of(result.table)
    assert not result.failed
    assert len(got) == len(set(got)) == len(served)
    assert set(got) == served
    assert result.rows == {t.webid: sum(1 for r in served if r[0] == t.webid) for t in mixed}
    # the meaning of non-numeric values is kept: digital names and codes, system states as bad rows, strings
    table = result.table.to_pylist()
    assert any(r["digital_state_name"] and not r["digital_state_is_system"] and r["good"] for r in table)
    assert any(r["digital_state_is_system"] and r["good"] is False and r["value"] is not None for r in table)
    assert any(r["value_string"] and r["value"] is None for r in table)
    assert {r["tag_name"] for r in table} == {t.name for t in mixed}
    assert all(r["partition_date"] == r["timestamp"].date() for r in table[:1000])


def _duplicate_tags(url: str, tags: list[Tag], start: datetime, end: datetime) -> tuple[list[Tag], set[tuple]]:
    served = served_rows(url, [t.webid for t in tags], format_datetime(start), format_datetime(end))
    with_dups = {r[0] for r in served if r[2] > 0}
    return [t for t in tags if t.webid in with_dups], {r for r in served if r[0] in with_dups}


def _edges_on_duplicates(served: set[tuple], webid: str, page: int) -> int:
    """How many pages of `page` values would end inside a run of equal timestamps (the trap at page edges)."""
    stamps = sorted((r[1], r[2]) for r in served if r[0] == webid)
    edges, i = 0, 0
    while len(stamps) - i >= page:
        last = stamps[i + page - 1][0]
        keep = [s for s in stamps[i : i + page] if s[0] != last]
        edges += stamps[i + page - 2][0] == last
        i += len(keep)
    return edges


def test_tiny_pages_lose_and_duplicate_nothing_at_duplicate_timestamps(client, simulator) -> None:
    start, end = END - timedelta(minutes=30), END
    server = requests.get(f"{simulator.url}/dataservers").json()["Items"][0]
    points = requests.get(f"{simulator.url}/dataservers/{server['WebId']}/points", params={"maxCount": 60}).json()
    tags, served = _duplicate_tags(simulator.url, [Tag(p["WebId"], p["Name"]) for p in points["Items"]], start, end)
    tags = tags[:8]
    served = {r for r in served if r[0] in {t.webid for t in tags}}
    assert tags, "the window must hold duplicate timestamps for this test to mean anything"
    assert sum(_edges_on_duplicates(served, t.webid, 4) for t in tags) > 0
    result = fetch(client, [TagWindow(t.webid, t.name, start, end) for t in tags], 4)
    got = rows_of(result.table)
    assert not result.failed
    assert result.requests > 20
    assert len(got) == len(set(got)) == len(served)
    assert set(got) == served


def test_windows_split_at_a_duplicate_timestamp_neither_overlap_nor_lose(client, simulator, mixed) -> None:
    tags, served = _duplicate_tags(simulator.url, mixed, START, END)
    assert tags
    tag = tags[0]
    split = min(r[1] for r in served if r[0] == tag.webid and r[2] > 0)  # a timestamp holding 2+ values
    first = fetch(client, [TagWindow(tag.webid, tag.name, START, split, include_end=False)], 7)
    second = fetch(client, [TagWindow(tag.webid, tag.name, split, END)], 7)
    got = rows_of(first.table) + rows_of(second.table)
    expected = {r for r in served if r[0] == tag.webid}
    assert len(got) == len(set(got)) == len(expected)
    assert set(got) == expected
    assert all(r[1] < split for r in rows_of(first.table))


def test_planned_units_cover_every_value_once(client, simulator, mixed) -> None:
    units = plan_units(
        [(t, START + timedelta(minutes=7 * i), END) for i, t in enumerate(mixed)],
        batch_size=3,
        max_window=timedelta(minutes=40),
    )
    assert len(units) > len(mixed) // 3 * 4
    assert all(len(u.windows) <= 3 for u in units)
    got = [row for u in units for row in rows_of(fetch(client, list(u.windows), 500).table)]
    expected = set()
    for i, t in enumerate(mixed):
        start = format_datetime(START + timedelta(minutes=7 * i))
        expected |= served_rows(simulator.url, [t.webid], start, format_datetime(END))
    assert len(got) == len(set(got)) == len(expected)
    assert set(got) == expected


def test_a_failing_tag_is_reported_and_the_others_land(client, simulator, mixed) -> None:
    bogus = "F1DPnotarealwebid"
    windows = [TagWindow(bogus, "ghost", START, END)] + [TagWindow(t.webid, t.name, START, END) for t in mixed[:3]]
    result = fetch(client, windows, 1000)
    assert list(result.failed) == [bogus]
    assert result.failed[bogus].startswith("HTTP 400")
    served = served_rows(simulator.url, [t.webid for t in mixed[:3]], format_datetime(START), format_datetime(END))
    assert set(rows_of(result.table)) == served


def test_more_values_at_one_timestamp_than_max_count_is_an_error_not_a_loop(client, simulator, mixed) -> None:
    tags, _ = _duplicate_tags(simulator.url, mixed, START, END)
    result = fetch(client, [TagWindow(tags[0].webid, tags[0].name, START, END)], 2)
    assert "raise extraction.max_count_per_tag" in result.failed[tags[0].webid]


# --- 7-digit precision --------------------------------------------------------------------------------------
class RecordingClient(PIWebAPIClient):
    """The real client, keeping the parameters of every recorded-values sub-request it sends."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[dict] = []

    def batch(self, subs, **kwargs):
        self.sent += [dict(s.params) for s in subs.values() if s.resource.endswith("/recorded")]
        return super().batch(subs, **kwargs)


def test_page_cursors_keep_seven_digits_and_lose_nothing(simulator) -> None:
    """Sub-second points are stamped to 100 ns; pages restart at PI's own 7-digit text (the simulator honours
    all 7 digits, as PI does), so nothing is lost or read twice at a page edge."""
    start, end = END - timedelta(minutes=20), END
    catalog = simulator.sim.points
    server = requests.get(f"{simulator.url}/dataservers").json()["Items"][0]
    points = requests.get(f"{simulator.url}/dataservers/{server['WebId']}/points", params={"maxCount": 80}).json()
    tags = [Tag(p["WebId"], p["Name"]) for p in points["Items"]]
    subsecond = [t for t in tags if catalog.point(catalog.index_of(t.webid)).subsecond][:12]
    assert subsecond
    served = served_rows(simulator.url, [t.webid for t in subsecond], format_datetime(start), format_datetime(end))
    with RecordingClient(make_client(simulator.url).settings) as client:
        result = fetch(client, [TagWindow(t.webid, t.name, start, end) for t in subsecond], 5)
        cursors = [p["startTime"] for p in client.sent if p["startTime"] != format_datetime(start)]
    seven = [c for c in cursors if len(c.rsplit(".", 1)[-1]) == len("1234567Z") and c[-2] != "0"]
    assert seven, f"no continuation at a 7-digit time among {cursors[:5]}"
    got = rows_of(result.table)
    assert not result.failed
    assert len(got) == len(set(got))
    assert set(got) == served
