"""`bronze.pi_interpolated`: values the PI server interpolates on a regular grid (`streams/{webId}/interpolated`),
many tags per `/batch` POST.

The grid is aligned to the epoch (multiples of `interval`), so every run asks for the same instants and the
MERGE on (tag_webid, timestamp) turns a re-read into an update in place: a grid point near the end of a
window, interpolated before later values arrived, gets its final value from the next run's lookback. A window
longer than `max_points` grid points is asked for in pieces that do not overlap (PI answers 400 beyond its
MaxReturnedItemsPerCall).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from osipi_connector.extract.per_tag import send_per_tag, tag_of
from osipi_connector.extract.pi_json import to_table
from osipi_connector.extract.timed_values import TIMED_VALUE_FIELDS, grid_ceil, grid_floor, timestamp, value_columns
from osipi_connector.extract.timeseries import FetchResult
from osipi_connector.lake.schemas import INTERPOLATED
from osipi_connector.piwebapi.client import PIClient, SubRequest
from osipi_connector.piwebapi.pitime import format_datetime
from osipi_connector.plan import Tag

SELECTED_FIELDS = ";".join(f"Items.{f}" for f in TIMED_VALUE_FIELDS.split(";")) + ";UnitsAbbreviation"


def grid_window(start: datetime, end: datetime, interval: timedelta) -> tuple[datetime, datetime] | None:
    """The first and last grid point inside [start, end]; None when there is none."""
    first, last = grid_ceil(start, interval), grid_floor(end, interval)
    return (first, last) if first <= last else None


def pieces(first: datetime, last: datetime, interval: timedelta, max_points: int) -> list[tuple[datetime, datetime]]:
    """[first, last] cut into runs of at most `max_points` grid points; adjacent runs share no point."""
    out = []
    while first <= last:
        end = min(first + (max_points - 1) * interval, last)
        out.append((first, end))
        first = end + interval
    return out


def fetch_interpolated(
    client: PIClient,
    windows: Iterable[tuple[Tag, datetime, datetime]],
    *,
    interval: timedelta,
    max_points: int,
    run_id: str,
    ingested_at: datetime,
) -> FetchResult:
    """INTERPOLATED rows of the grid points inside each (tag, start, end) window; a tag whose request failed
    is named in `failed` (rows of its other pieces are kept: they are right, and a re-run rewrites them)."""
    seconds = int(interval.total_seconds())
    if seconds < 1 or interval != timedelta(seconds=seconds):
        raise ValueError(f"interval {interval} is not a whole number of seconds")
    tags: dict[str, Tag] = {}
    requests: dict[str, SubRequest] = {}
    for tag, start, end in windows:
        grid = grid_window(start, end, interval)
        if grid is None:
            continue
        tags[tag.webid] = tag
        for k, (a, b) in enumerate(pieces(*grid, interval, max_points)):
            params = {
                "startTime": format_datetime(a),
                "endTime": format_datetime(b),
                "interval": f"{seconds}s",
                "selectedFields": SELECTED_FIELDS,
            }
            requests[f"{tag.webid}|{k}"] = SubRequest(f"streams/{tag.webid}/interpolated", params)
    result, answers = send_per_tag(client, INTERPOLATED, requests, tags)
    rows = []
    for key, content in answers:
        webid = tag_of(key)
        units = content.get("UnitsAbbreviation")
        for item in content.get("Items") or []:
            at = timestamp(item)
            if at is None:
                continue
            rows.append(
                {
                    "tag_webid": webid,
                    "tag_name": tags[webid].name,
                    "timestamp": at,
                    **value_columns(item, units),
                    "interval_seconds": seconds,
                    "partition_date": at.date(),
                    "ingested_at": ingested_at,
                    "run_id": run_id,
                }
            )
            result.rows[webid] = result.rows.get(webid, 0) + 1
    result.table = to_table(INTERPOLATED, rows)
    return result
