"""`bronze.pi_event_frames`: frames of one AF database active in a window, with their attribute values.

The search is `Overlapped`, so a run whose window still touches a frame that was open last time reads it
again with its end time: the MERGE on `event_frame_id` updates the row instead of adding a second one.
Attribute values take two batched rounds (each frame's attribute list, then every attribute's value),
never one call per attribute and frame in sequence.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

import pyarrow as pa

from osipi_connector.extract.af import find_database
from osipi_connector.extract.pi_json import OPEN_END_YEAR, get_many, link_webid, listed_items, pi_time, to_table
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


def fetch_event_frames(
    client: PIClient,
    *,
    af_database: str,
    start: datetime,
    end: datetime,
    run_id: str,
    ingested_at: datetime,
) -> pa.Table:
    """EVENT_FRAMES rows of every frame active between `start` and `end` (child frames included)."""
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
