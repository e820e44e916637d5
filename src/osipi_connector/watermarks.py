"""Per-tag progress in `checkpoints.pi_watermarks`, read and written only through the Sink.

Like cognite-extractor-utils' watermark state store: each item has a (low, high) range of committed data;
`high` moves forward only, `low` moves back only (backfills widen it), and a row is written only AFTER the
data it covers is committed. A crash between the two leaves the old watermark, so the next run re-reads
the window; the MERGE on (tag_webid, timestamp, value_seq) makes that re-read a no-op.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyarrow as pa

from osipi_connector.lake.schemas import WATERMARKS
from osipi_connector.lake.sink import Sink
from osipi_connector.plan import Tag

TIMESERIES_DATASET = "timeseries"
REPAIR = dataclasses.replace(WATERMARKS, monotonic={})
"""WATERMARKS written without greatest/least: the one write that may move a high watermark back (`repaired`)."""


@dataclass(frozen=True)
class Watermark:
    item_id: str
    item_name: str | None
    low: datetime | None
    high: datetime | None
    last_status: str | None = None
    last_error: str | None = None


def load(sink: Sink, dataset: str = TIMESERIES_DATASET) -> dict[str, Watermark]:
    table = sink.read(WATERMARKS)
    out: dict[str, Watermark] = {}
    for row in table.to_pylist():
        if row["dataset"] == dataset:
            out[row["item_id"]] = Watermark(
                row["item_id"],
                row["item_name"],
                row["low_watermark"],
                row["high_watermark"],
                row["last_status"],
                row["last_error"],
            )
    return out


def windows(
    mode: str,
    tags: list[Tag],
    marks: dict[str, Watermark],
    *,
    start: datetime,
    end: datetime,
    lookback: timedelta,
) -> list[tuple[Tag, datetime, datetime]]:
    """Each tag's window for `mode`: incremental = [high − lookback, end] (new tags from `start`);
    full and backfill = [start, end]. Empty windows are left out."""
    out = []
    for tag in tags:
        tag_start = start
        mark = marks.get(tag.webid)
        if mode == "incremental" and mark is not None and mark.high is not None:
            tag_start = mark.high - lookback
        if tag_start < end:
            out.append((tag, tag_start, end))
    return out


def past(marks: Mapping[str, Watermark], now: datetime) -> list[str]:
    """Items whose high watermark is past `now` (the server's clock): no data can be committed up to there.
    An older version (which fell back to the job's clock) or a job clock ahead of PI wrote them; kept, they
    would make every later window start in the future and skip data for good."""
    return [item for item, mark in marks.items() if mark.high is not None and mark.high > now]


def repaired(
    marks: Mapping[str, Watermark], items: Iterable[str], latest: Mapping[str, datetime], start: datetime, now: datetime
) -> dict[str, Watermark]:
    """The watermarks of `items` moved back to a safe point: the item's latest time in the table (the data
    really committed: the next window re-reads from there minus the lookback), or without rows the earlier
    of its low watermark and the run's `start`; never past `now`. Write them with the REPAIR spec."""
    out = {}
    for item in items:
        mark = marks[item]
        safe = latest.get(item) or min(t for t in (mark.low, start) if t is not None)
        safe = min(safe, now)
        low = min(mark.low, safe) if mark.low is not None else safe
        out[item] = dataclasses.replace(mark, low=low, high=safe)
    return out


def advanced(
    mode: str, old: Watermark | None, start: datetime, end: datetime, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """(low, high) after [start, end] was committed. Backfill never moves `high` back, and moves it forward
    only when the window touches the committed range (else the gap between them would look covered).
    `high` never passes `now` (the server's clock): data after it cannot be committed yet."""
    if now is not None:
        end = min(end, now)
        start = min(start, end)
    if old is None or old.high is None or old.low is None:
        return start, end
    low = min(old.low, start)
    if mode == "backfill" and start > old.high:
        return low, old.high
    return low, max(old.high, end)


def rows(
    updates: list[dict],
    *,
    run_id: str,
    updated_at: datetime,
    dataset: str = TIMESERIES_DATASET,
) -> pa.Table:
    """WATERMARKS rows from dicts with item_id, item_name, low, high, status, error, rows."""
    return pa.Table.from_pylist(
        [
            {
                "dataset": dataset,
                "item_id": u["item_id"],
                "item_name": u.get("item_name"),
                "low_watermark": u.get("low"),
                "high_watermark": u.get("high"),
                "last_run_id": run_id,
                "last_status": u["status"],
                "last_error": u.get("error"),
                "rows_last_run": u.get("rows"),
                "updated_at": updated_at,
            }
            for u in updates
        ],
        schema=WATERMARKS.schema,
    )
