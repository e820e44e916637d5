"""`bronze.pi_event_frames`: frames of one AF database active in a window, with their attribute values.

The search is `Overlapped`, so a run whose window still touches a frame that was open last time reads it
again with its end time: the MERGE on `event_frame_id` updates the row instead of adding a second one.
A frame can still change after it left every later window: plants acknowledge alarms and downtimes minutes
to hours after they closed, and no PI Web API search finds "acknowledged since". So the frames the table
holds as pending (in progress, or acknowledgeable and not acknowledged) and that ended within
`extraction.event_frame_recheck` are re-read by WebID through the batch controller on every run.
Attribute values take two batched rounds (each frame's attribute list, then every attribute's value),
never one call per attribute and frame in sequence.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from osipi_connector.extract.af import find_database
from osipi_connector.extract.pi_json import (
    OPEN_END_YEAR,
    get_many,
    link_webid,
    listed_items,
    pi_time,
    raise_failed,
    to_table,
)
from osipi_connector.lake.schemas import EVENT_FRAMES
from osipi_connector.piwebapi.client import PIClient, SubRequest
from osipi_connector.piwebapi.pitime import format_datetime, parse_iso

log = logging.getLogger(__name__)
PAGE = 1000
FRAME_FIELDS = (
    "Links;Items.WebId;Items.Id;Items.Name;Items.TemplateName;Items.Description;Items.StartTime;Items.EndTime;"
    "Items.Severity;Items.CanBeAcknowledged;Items.IsAcknowledged;Items.AcknowledgedBy;Items.AcknowledgedDate;"
    "Items.AreValuesCaptured;Items.CategoryNames;Items.RefElementWebIds;Items.Links.PrimaryReferencedElement"
)
ONE_FRAME_FIELDS = ";".join(f.removeprefix("Items.") for f in FRAME_FIELDS.split(";") if f != "Links")
PENDING_COLUMNS = ["event_frame_webid", "af_database_webid", "end_time", "is_in_progress"]
PENDING_COLUMNS += ["can_be_acknowledged", "is_acknowledged"]


def pending_frames(stored: pa.Table, database_webid: str, ended_after: datetime) -> list[str]:
    """WebIDs of the stored frames of `database_webid` that may still change: in progress, or acknowledgeable
    and not yet acknowledged and ended at or after `ended_after` (`stored` has PENDING_COLUMNS)."""
    if stored.num_rows == 0:
        return []
    ours = pc.equal(stored["af_database_webid"], database_webid)
    in_progress = pc.fill_null(stored["is_in_progress"], False)
    waiting = pc.and_(
        pc.and_(
            pc.fill_null(stored["can_be_acknowledged"], False), pc.invert(pc.fill_null(stored["is_acknowledged"], True))
        ),
        pc.greater_equal(stored["end_time"], pa.scalar(ended_after, stored.schema.field("end_time").type)),
    )
    chosen = pc.and_(ours, pc.or_(in_progress, pc.fill_null(waiting, False)))
    return stored.filter(chosen)["event_frame_webid"].to_pylist()


def fetch_event_frames(
    client: PIClient,
    *,
    af_database: str,
    start: datetime,
    end: datetime,
    run_id: str,
    ingested_at: datetime,
    stored: pa.Table | None = None,
    recheck_after: datetime | None = None,
) -> pa.Table:
    """EVENT_FRAMES rows of every frame active between `start` and `end` (child frames included), and of the
    `stored` frames (PENDING_COLUMNS of the table) still pending that ended after `recheck_after`."""
    db = find_database(client, af_database)
    params = {
        "searchMode": "Overlapped",
        "startTime": format_datetime(start),
        "endTime": format_datetime(end),
        "searchFullHierarchy": "true",
        "selectedFields": FRAME_FIELDS,
    }
    frames: dict[str, dict] = {}
    for frame in client.iter_items(f"assetdatabases/{db['WebId']}/eventframes", params, page_size=PAGE):
        frames.setdefault(frame["Id"], frame)
    if stored is not None and recheck_after is not None:
        found = {f["WebId"] for f in frames.values()}
        pending = [w for w in pending_frames(stored, db["WebId"], recheck_after) if w not in found]
        for frame in frames_by_webid(client, pending):
            frames.setdefault(frame["Id"], frame)
    values = attribute_values(client, list(frames.values()))
    rows = []
    for f in frames.values():
        in_progress = not f.get("EndTime") or parse_iso(f["EndTime"]).year == OPEN_END_YEAR
        rows.append(
            {
                "event_frame_id": f["Id"],
                "event_frame_webid": f["WebId"],
                "event_name": f["Name"],
                "template_name": f.get("TemplateName") or None,
                "description": f.get("Description") or None,
                "start_time": pi_time(f["StartTime"]),
                "end_time": None if in_progress else pi_time(f["EndTime"]),
                "is_in_progress": in_progress,
                "primary_element_webid": link_webid(f.get("Links"), "PrimaryReferencedElement"),
                "referenced_element_webids": f.get("RefElementWebIds") or [],
                "severity": f.get("Severity"),
                "can_be_acknowledged": f.get("CanBeAcknowledged"),
                "is_acknowledged": f.get("IsAcknowledged"),
                "acknowledged_by": f.get("AcknowledgedBy") or None,
                "acknowledged_date": pi_time(f.get("AcknowledgedDate")),
                "are_values_captured": f.get("AreValuesCaptured"),
                "categories": f.get("CategoryNames") or [],
                "attributes": json.dumps(values[f["WebId"]], ensure_ascii=False),
                "af_database_webid": db["WebId"],
                "ingested_at": ingested_at,
                "run_id": run_id,
            }
        )
    return to_table(EVENT_FRAMES, rows)


def frames_by_webid(client: PIClient, webids: Iterable[str]) -> list[dict]:
    """The frames as PI has them now, in batched GETs; a frame deleted in PI since (404) is skipped with a
    warning (its row stays as last read), any other failure raises naming the frames."""
    requests = {w: SubRequest(f"eventframes/{w}", {"selectedFields": ONE_FRAME_FIELDS}) for w in webids}
    if requests:
        log.info("re-reading %d event frame(s) still in progress or waiting for an acknowledgement", len(requests))
    answers = get_many(client, requests)
    gone = [w for w, sub in answers.items() if sub.status == 404]
    if gone:
        log.warning("%d pending event frame(s) no longer exist in PI, rows kept as last read: %s", len(gone), gone[:5])
    raise_failed("re-reading event frames", {w: s for w, s in answers.items() if not s.ok and s.status != 404})
    return [sub.content for sub in answers.values() if sub.ok]


def attribute_values(client: PIClient, frames: list[dict]) -> dict[str, dict[str, Any]]:
    """{frame WebID: {attribute name: value}}: values at the frame's end (now while it is open), as
    PI's event-frame time context gives them. A digital state becomes its name; an error value null."""
    fields = {"selectedFields": "Items.WebId;Items.Name"}
    requests = {f["WebId"]: SubRequest(f"eventframes/{f['WebId']}/attributes", fields) for f in frames}
    lists = listed_items(
        "reading event-frame attributes", get_many(client, requests), {f["WebId"]: f["Name"] for f in frames}
    )
    value_requests = {}
    names: dict[str, tuple[str, str]] = {}
    for f in frames:
        end = pi_time(f.get("EndTime"))
        params = {"selectedFields": "Value"} | ({"time": format_datetime(end)} if end else {})
        for a in lists[f["WebId"]]:
            value_requests[a["WebId"]] = SubRequest(f"streams/{a['WebId']}/value", params)
            names[a["WebId"]] = (f["WebId"], a["Name"])
    out: dict[str, dict[str, Any]] = {f["WebId"]: {} for f in frames}
    answers = get_many(client, value_requests)
    failed = {names[k][1] for k, s in answers.items() if not s.ok}
    if failed:  # a broken data reference should not hide the frame: its value is null, and we say so
        log.warning("event-frame attribute values unavailable (stored as null): %s", ", ".join(sorted(failed)[:10]))
    for key, sub in answers.items():
        frame, name = names[key]
        out[frame][name] = plain_value(sub.content.get("Value")) if sub.ok else None
    return out


def plain_value(value: Any) -> Any:
    """A TimedValue's Value as plain JSON: digital state -> its name, `{"Errors": [...]}` -> None."""
    if isinstance(value, dict):
        if "Name" in value:
            return value["Name"]
        return None
    return value
