"""`bronze.pi_summary`: statistics the PI server computes per interval (`streams/{webId}/summary` with
`summaryDuration`), many tags per `/batch` POST.

Only completed intervals are asked for, on a grid aligned to the epoch (multiples of the duration): every run
computes the same intervals, so the MERGE on (tag, type, basis, interval) updates an interval that late data
changed instead of adding a second row. PI answers the intervals of each summary type in time order; that
order (checked against the count asked for) ties each value to its interval, because the value's own
timestamp is the time of the extreme for Minimum / Maximum. PI computes only Count on digital and string
points, so those points are asked for the configured types PI supports there (none: the point is left out).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from osipi_connector.extract.per_tag import send_per_tag
from osipi_connector.extract.pi_json import to_table
from osipi_connector.extract.recorded_scan import odd_value
from osipi_connector.extract.timed_values import grid_floor, timestamp
from osipi_connector.extract.timeseries import FetchResult
from osipi_connector.lake.schemas import SUMMARY
from osipi_connector.piwebapi.client import PIClient, SubRequest
from osipi_connector.piwebapi.pitime import format_datetime
from osipi_connector.plan import Tag

NON_NUMERIC_TYPES = ("Count",)  # PI: "Count is the only summary type supported on non-numeric streams"
NUMERIC_POINT_TYPES = ("Float16", "Float32", "Float64", "Int16", "Int32")


def interval_window(start: datetime, end: datetime, duration: timedelta) -> tuple[datetime, datetime] | None:
    """[first interval start, last completed interval end] of the grid around [start, end]; None when no
    interval has completed. The start is rounded down, so the interval `start` falls in is computed whole."""
    first, last = grid_floor(start, duration), grid_floor(end, duration)
    return (first, last) if first < last else None


def types_for(point_type: str | None, types: Sequence[str]) -> list[str]:
    """The configured types PI computes for a point of `point_type` (unknown types: all of them)."""
    if point_type is None or point_type in NUMERIC_POINT_TYPES:
        return list(types)
    return [t for t in types if t in NON_NUMERIC_TYPES]


def fetch_summaries(
    client: PIClient,
    windows: Iterable[tuple[Tag, datetime, datetime]],
    *,
    duration: timedelta,
    types: Sequence[str],
    calculation_basis: str,
    max_values: int,
    point_types: Mapping[str, str | None],
    run_id: str,
    ingested_at: datetime,
) -> FetchResult:
    """SUMMARY rows of every interval of `duration` inside each (tag, start, end) window (aligned: see
    `interval_window`); at most `max_values` values per sub-request."""
    seconds = int(duration.total_seconds())
    if seconds < 1 or duration != timedelta(seconds=seconds):
        raise ValueError(f"summary duration {duration} is not a whole number of seconds")
    tags: dict[str, Tag] = {}
    asked: dict[str, tuple[str, list[str], list[tuple[datetime, datetime]], bool]] = {}
    requests: dict[str, SubRequest] = {}
    for tag, start, end in windows:
        window = interval_window(start, end, duration)
        kinds = types_for(point_types.get(tag.webid), types)
        if window is None or not kinds:
            continue
        tags[tag.webid] = tag
        per_request = max(1, max_values // len(kinds) - 1)
        first, last = window
        k = 0
        while first < last:
            b = min(first + per_request * duration, last)
            intervals = [(a, min(a + duration, b)) for a in _range(first, b, duration)]
            # A piece that is not the window's last asks for one interval more and drops it: PI counts an
            # event exactly at a request's end in its last interval only, so a kept interval is never last.
            extra = b < last
            key = f"{tag.webid}|{k}"
            asked[key] = (tag.webid, kinds, intervals, extra)
            params = {
                "startTime": format_datetime(first),
                "endTime": format_datetime(b + duration if extra else b),
                "summaryType": kinds,
                "summaryDuration": f"{seconds}s",
                "calculationBasis": calculation_basis,
            }
            requests[key] = SubRequest(f"streams/{tag.webid}/summary", params)
            first, k = b, k + 1
    result, answers = send_per_tag(client, SUMMARY, requests, tags)
    rows: list[dict[str, Any]] = []
    for key, content in answers:
        webid, kinds, intervals, extra = asked[key]
        by_type: dict[str, list[dict]] = {kind: [] for kind in kinds}
        for item in content.get("Items") or []:
            by_type.setdefault(item.get("Type"), []).append(item.get("Value") or {})
        expected = len(intervals) + extra
        wrong = {kind: len(values) for kind, values in by_type.items() if len(values) != expected}
        if wrong:
            result.failed[webid] = f"PI answered {wrong} values for {expected} intervals of {kinds}"
            continue
        for kind, values in by_type.items():
            for (a, b), value in zip(intervals, values[: len(intervals)], strict=True):
                rows.append(_row(tags[webid], kind, calculation_basis, a, b, value, run_id, ingested_at))
        result.rows[webid] = result.rows.get(webid, 0) + len(kinds) * len(intervals)
    result.table = to_table(SUMMARY, rows)
    return result


def _range(first: datetime, last: datetime, step: timedelta) -> Iterable[datetime]:
    while first < last:
        yield first
        first += step


def _row(
    tag: Tag, kind: str, basis: str, a: datetime, b: datetime, value: dict, run_id: str, ingested_at: datetime
) -> dict[str, Any]:
    number, text, _, _, _ = odd_value(value.get("Value"))
    return {
        "tag_webid": tag.webid,
        "tag_name": tag.name,
        "summary_type": kind,
        "calculation_basis": basis,
        "interval_start": a,
        "interval_end": b,
        "timestamp": timestamp(value),
        "value": None if number is None else float(number),
        "good": value.get("Good"),
        "questionable": value.get("Questionable"),
        "substituted": value.get("Substituted"),
        "annotated": value.get("Annotated"),
        "units": value.get("UnitsAbbreviation") or None,
        "error": text,
        "partition_date": a.date(),
        "ingested_at": ingested_at,
        "run_id": run_id,
    }
