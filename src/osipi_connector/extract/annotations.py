"""`bronze.pi_eventframe_annotations`: the annotations (operator notes) of the event frames active in a
window of one AF database. PI writes an annotation any time, most often when a frame closes, so the window
is the event-frame dataset's (`Overlapped`, with lookback): a frame still touching the window is read again
and a note added since is picked up; the MERGE on (event_frame_id, annotation_id) keeps one row each.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from osipi_connector.extract.pi_json import get_many, listed_items, pi_time, to_table
from osipi_connector.lake.schemas import EVENT_FRAME_ANNOTATIONS
from osipi_connector.piwebapi.client import PIClient, SubRequest
from osipi_connector.piwebapi.pitime import format_datetime

PAGE = 1000
FRAME_FIELDS = "Links;Items.WebId;Items.Id;Items.Name"


def fetch_annotations(
    client: PIClient, database: dict[str, Any], *, start: datetime, end: datetime, run_id: str, ingested_at: datetime
) -> pa.Table:
    """EVENT_FRAME_ANNOTATIONS rows of every frame active between `start` and `end` (child frames included)."""
    params = {
        "searchMode": "Overlapped",
        "startTime": format_datetime(start),
        "endTime": format_datetime(end),
        "searchFullHierarchy": "true",
        "selectedFields": FRAME_FIELDS,
    }
    listing = client.iter_items(f"assetdatabases/{database['WebId']}/eventframes", params, page_size=PAGE)
    frames = {f["Id"]: f for f in listing}
    requests = {key: SubRequest(f"eventframes/{f['WebId']}/annotations") for key, f in frames.items()}
    notes = listed_items("reading annotations", get_many(client, requests), {k: f["Name"] for k, f in frames.items()})
    rows = {
        (key, a["Id"]): {
            "event_frame_id": key,
            "annotation_id": a["Id"],
            "event_frame_webid": frames[key]["WebId"],
            "event_name": frames[key]["Name"],
            "name": a.get("Name") or None,
            "description": a.get("Description") or None,
            "value": _text(a.get("Value")),
            "creator": a.get("Creator") or None,
            "creation_date": pi_time(a.get("CreationDate")),
            "modifier": a.get("Modifier") or None,
            "modify_date": pi_time(a.get("ModifyDate")),
            "af_database_webid": database["WebId"],
            "ingested_at": ingested_at,
            "run_id": run_id,
        }
        for key, items in notes.items()
        for a in items
    }
    return to_table(EVENT_FRAME_ANNOTATIONS, list(rows.values()))


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()
