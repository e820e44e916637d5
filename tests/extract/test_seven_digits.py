"""Two PI values 100 ns apart in one stored microsecond: Delta keeps microseconds, so they share a `timestamp`
and `value_seq` tells them apart (0, 1 in PI's order), and a page edge inside that microsecond moves to its
start so both are on one page, numbered the same whatever the paging. The simulator never stamps two values
of one point within a microsecond, so the round is fed PI-shaped answers directly."""

from __future__ import annotations

from datetime import datetime, timezone

import orjson

from osipi_connector.extract.recorded_scan import scan_batch
from osipi_connector.extract.timeseries import TagWindow, _Columns, _read_round
from osipi_connector.piwebapi.batch import SubResponse
from osipi_connector.piwebapi.pitime import parse_pi_timestamp_ticks

UTC = timezone.utc
WINDOW = TagWindow("W1", "T1", datetime(2025, 3, 1, tzinfo=UTC), datetime(2025, 3, 2, tzinfo=UTC))
STAMPS = ["00.000001", "00.0000013", "00.0000025", "00.0000027", "00.0000031"]


def item(stamp: str, value: float) -> dict:
    return {
        "Timestamp": f"2025-03-01T00:00:{stamp}Z",
        "Value": value,
        "Good": True,
        "Questionable": False,
        "Substituted": False,
        "Annotated": False,
    }


def answer(items: list[dict], scanned: bool) -> SubResponse:
    content = {"Items": items, "UnitsAbbreviation": ""}
    if scanned:  # the fast path: the /batch bytes read into columns
        body = orjson.dumps({"0": {"Status": 200, "Headers": {}, "Content": content}})
        content = scan_batch(body)["0"]["Content"]
    return SubResponse(200, content)


def read(scanned: bool) -> tuple[list[tuple], list[str]]:
    everything = [item(s, float(i)) for i, s in enumerate(STAMPS)]
    rows, cursors = [], []
    pending = {"0": (WINDOW, "2025-03-01T00:00:00Z")}
    while pending:
        start = pending["0"][1]
        cursors.append(start)
        first = parse_pi_timestamp_ticks(start)  # PI: startTime inclusive to the tick, maxCount 4
        served = [i for i in everything if parse_pi_timestamp_ticks(i["Timestamp"]) >= first][:4]
        columns = _Columns()
        pending = _read_round(pending, {"0": answer(served, scanned)}, 4, columns, {})
        table = columns.table("run", datetime(2025, 3, 3, tzinfo=UTC))
        rows += zip(table["timestamp"].to_pylist(), table["value_seq"].to_pylist(), table["value"].to_pylist())
    return rows, cursors


def test_values_100_ns_apart_are_two_rows_and_a_page_edge_keeps_their_microsecond_together() -> None:
    for scanned in (False, True):
        rows, cursors = read(scanned)
        us = [datetime(2025, 3, 1, 0, 0, 0, m, tzinfo=UTC) for m in (1, 1, 2, 2, 3)]
        assert rows == [(us[0], 0, 0.0), (us[1], 1, 1.0), (us[2], 0, 2.0), (us[3], 1, 3.0), (us[4], 0, 4.0)]
        # the first page ended inside microsecond 2: the next starts at its first value, all 7 digits kept
        assert cursors == ["2025-03-01T00:00:00Z", "2025-03-01T00:00:00.0000025Z"]
