"""`extraction.change_feed: stream_updates`: PI Web API Stream Updates as the change feed of `pi_timeseries`.

An incremental run re-reads only its lookback, and MERGE never deletes: a value edited or removed in PI
after it left the lookback stays wrong in the lake. With the change feed on, every selected tag is
registered once for Stream Updates (`POST streamsets/updates`); each run asks for what changed since the
tag's marker (`GET streamsets/updates?marker=…`) and, for every time range holding an edit, a late value
or a removal (actions Update and Delete; Add is a new value at the end, which the windowed read lands),
deletes the range's rows and MERGEs the range as PI now holds it. Re-reading the range rather than
applying the event's value keeps duplicate timestamps (`value_seq`) exact and makes a re-run a no-op.

Order of writes, so a run killed anywhere loses nothing: new tags are registered BEFORE the windowed read
(`start`), and their markers stored; after it (`finish`), ranges are replaced per group of tags and only
then the group's new markers are stored. A killed run leaves the old markers; the next run asks with them
again and gets the same changes (and more).

A marker the server no longer knows (expired: 409, or its cache dropped: 404) cannot say what changed in
the gap: the tag is registered again and its window [marker time − lookback, now] is replaced (edits and
removals within it land; older ones during the gap cannot be seen). Each such tag is counted in
`pi_run_metrics.change_feed_fallbacks` and logged as a warning: never a silent fallback.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import pyarrow as pa

from osipi_connector.extract.clock import server_now
from osipi_connector.extract.timeseries import TagWindow, fetch_recorded
from osipi_connector.lake.range_delete import Range, delete_ranges
from osipi_connector.lake.schemas import CHANGE_MARKERS, TIMESERIES
from osipi_connector.piwebapi.client import PIClient, PIWebAPIError, SubRequest, SubResponse
from osipi_connector.piwebapi.pitime import UTC, parse_pi_timestamp_ticks, ticks_to_datetime
from osipi_connector.plan import Tag

if TYPE_CHECKING:
    from osipi_connector.runner import _Run

log = logging.getLogger(__name__)
STREAM_UPDATES = "stream_updates"
CHANGED = ("Update", "Delete")  # actions that touch values before the end of the series
COALESCE = timedelta(hours=1)  # changes of one tag closer than this are re-read as one range
GROUP = 100  # markers / WebIDs per streamsets sub-request
_US = timedelta(microseconds=1)


@dataclass(frozen=True)
class Marker:
    tag: Tag
    marker: str
    marker_time: datetime
    registered_at: datetime


@dataclass
class ChangeFeed:
    """One run's change feed: `start` before the windowed read, `finish` after it."""

    run: _Run
    markers: dict[str, Marker] = field(default_factory=dict)
    fallbacks: list[str] = field(default_factory=list)  # WebIDs whose marker had expired

    @classmethod
    def start(cls, run: _Run, client: PIClient) -> ChangeFeed:
        """Load the markers and register the tags that have none (stored at once: their changes from now on
        come through the feed, everything before through the windowed read that follows)."""
        feed = cls(run, load(run.sink))
        fresh = [tag for tag in run.tags if tag.webid not in feed.markers]
        if fresh:
            feed._store(feed._register(client, fresh))
        return feed

    def finish(self, client: PIClient) -> None:
        """Replace the ranges changed since each tag's marker; expired markers fall back (counted)."""
        run = self.run
        known = [self.markers[tag.webid] for tag in run.tags if tag.webid in self.markers]
        size = run.config.extraction.batch_size
        for at in range(0, len(known), size):
            group = known[at : at + size]
            asked_at = server_now(client)
            changed, latest, expired = _retrieve(client, group)
            run.requests += 2
            if expired:
                self._fall_back(client, [m for m in group if m.tag.webid in expired])
            ranges = [r for m in group if m.tag.webid in changed for r in _ranges(m.tag, changed[m.tag.webid])]
            failed = self._replace(client, ranges)
            self._store(
                Marker(m.tag, latest[m.tag.webid], asked_at, m.registered_at)
                for m in group
                if m.tag.webid in latest and m.tag.webid not in failed
            )
        if self.fallbacks:
            log.warning(
                "change feed: %d tag(s) had an expired Stream Updates marker and were re-read over their lookback "
                "instead; edits older than that made while the marker was expired are not in pi_timeseries "
                "(run a backfill of those tags to be sure): %s",
                len(self.fallbacks),
                ", ".join(self.fallbacks[:20]),
            )
        run.result.change_feed_fallbacks = len(self.fallbacks)

    # --- steps ----------------------------------------------------------------------------------------
    def _fall_back(self, client: PIClient, expired: list[Marker]) -> None:
        """Register again, then replace [marker time − lookback, now]: changes after the new marker come
        through the feed, the window before it is as PI holds it now."""
        lookback = self.run.config.extraction.lookback
        renewed = self._register(client, [m.tag for m in expired])
        until = server_now(client)
        failed = self._replace(client, [(m.tag, m.marker_time - lookback, until) for m in expired])
        self._store(Marker(m.tag, m.marker, until, m.registered_at) for m in renewed if m.tag.webid not in failed)
        self.fallbacks += [m.tag.name or m.tag.webid for m in expired]

    def _register(self, client: PIClient, tags: Sequence[Tag]) -> list[Marker]:
        now = datetime.now(UTC)
        requests = {
            str(i): SubRequest("streamsets/updates", {"webId": [t.webid for t in tags[i : i + GROUP]]}, method="POST")
            for i in range(0, len(tags), GROUP)
        }
        out = []
        for key, answer in client.batch(requests).items():
            group = tags[int(key) : int(key) + GROUP]
            for tag, item in zip(group, _items(answer, "register for Stream Updates"), strict=True):
                if item.get("Status") not in ("Succeeded", "AlreadyRegistered") or not item.get("LatestMarker"):
                    raise PIWebAPIError(f"Stream Updates registration of {tag.name or tag.webid} failed: {item}")
                out.append(Marker(tag, item["LatestMarker"], self.run.end, now))
        self.run.requests += 1
        return out

    def _replace(self, client: PIClient, ranges: Sequence[tuple[Tag, datetime, datetime]]) -> set[str]:
        """Delete and re-read each (tag, first, last) range, µs-aligned so every value of a stored timestamp
        is in one range; answers the WebIDs whose re-read failed (their rows and markers are left as they are)."""
        if not ranges:
            return set()
        run = self.run
        windows = [TagWindow(tag.webid, tag.name, first, last + _US, include_end=False) for tag, first, last in ranges]
        fetched = fetch_recorded(
            client,
            windows,
            max_count=run.config.extraction.max_count_per_tag,
            run_id=run.run_id,
            ingested_at=run.ingested_at,
            max_values=run.config.performance.max_values_per_request,
        )
        run.requests += fetched.requests
        failed = set(fetched.failed)
        run.result.errors.extend(f"change feed {w}: {e}" for w, e in sorted(fetched.failed.items()))
        landed: list[Range] = [(tag.webid, first, last) for tag, first, last in ranges if tag.webid not in failed]
        delete_ranges(run.sink, TIMESERIES, landed)
        table = fetched.table
        if failed and table.num_rows:
            table = table.filter(pa.array([w not in failed for w in table["tag_webid"].to_pylist()]))
        if table.num_rows:
            run._merge(TIMESERIES, table)
        return failed

    def _store(self, markers: Iterable[Marker]) -> None:
        markers = list(markers)
        if not markers:
            return
        now = datetime.now(UTC)
        rows = [
            {
                "tag_webid": m.tag.webid,
                "tag_name": m.tag.name,
                "marker": m.marker,
                "marker_time": m.marker_time,
                "registered_at": m.registered_at,
                "last_run_id": self.run.run_id,
                "updated_at": now,
            }
            for m in markers
        ]
        self.run.sink.merge(CHANGE_MARKERS, pa.Table.from_pylist(rows, schema=CHANGE_MARKERS.schema))
        self.markers.update({m.tag.webid: m for m in markers})


def load(sink: object) -> dict[str, Marker]:
    table = sink.read(CHANGE_MARKERS)  # type: ignore[attr-defined]
    return {
        row["tag_webid"]: Marker(
            Tag(row["tag_webid"], row["tag_name"]), row["marker"], row["marker_time"], row["registered_at"]
        )
        for row in table.to_pylist()
    }


def _items(answer: SubResponse, what: str) -> list[dict]:
    content = answer.content
    if not answer.ok or not isinstance(content, dict) or not isinstance(content.get("Items"), list):
        detail = content.get("Errors") if isinstance(content, dict) else content
        raise PIWebAPIError(
            f"could not {what} (HTTP {answer.status}: {detail}); does this PI Web API serve Stream Updates "
            "(2017 R2 or later)? Else remove extraction.change_feed"
        )
    return content["Items"]


def _retrieve(client: PIClient, group: Sequence[Marker]) -> tuple[dict[str, list[int]], dict[str, str], set[str]]:
    """({WebID: ticks of changed values}, {WebID: latest marker}, WebIDs whose marker failed)."""
    requests = {
        str(i): SubRequest("streamsets/updates", {"marker": [m.marker for m in group[i : i + GROUP]]})
        for i in range(0, len(group), GROUP)
    }
    changed: dict[str, list[int]] = {}
    latest: dict[str, str] = {}
    expired: set[str] = set()
    for key, answer in client.batch(requests).items():
        markers = group[int(key) : int(key) + GROUP]
        for marker, item in zip(markers, _items(answer, "retrieve Stream Updates"), strict=True):
            webid = marker.tag.webid
            if item.get("Status") == "Failed" or not item.get("LatestMarker"):
                expired.add(webid)
                continue
            latest[webid] = item["LatestMarker"]
            ticks = [
                parse_pi_timestamp_ticks(e["Timestamp"]) for e in item.get("Events") or [] if e.get("Action") in CHANGED
            ]
            if ticks:
                changed[webid] = ticks
    return changed, latest, expired


def _ranges(tag: Tag, ticks: list[int]) -> list[tuple[Tag, datetime, datetime]]:
    """The tag's changed timestamps as µs-aligned ranges, changes closer than COALESCE in one range."""
    gap = COALESCE // _US * 10
    out: list[tuple[Tag, datetime, datetime]] = []
    ordered = sorted(set(ticks))
    first = last = ordered[0]
    for t in ordered[1:]:
        if t - last > gap:
            out.append((tag, ticks_to_datetime(first), ticks_to_datetime(last)))
            first = t
        last = t
    out.append((tag, ticks_to_datetime(first), ticks_to_datetime(last)))
    return out
