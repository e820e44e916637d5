"""`bronze.pi_point_attributes`: every attribute of each selected PI point (`points/{webId}/attributes`), in
long format — one row per point and attribute — so attributes that `pi_tags` has no column for (compression
and exception settings, scan class, point source, location codes, ...) are queryable too.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import orjson

from osipi_connector.extract.per_tag import send_per_tag
from osipi_connector.extract.pi_json import to_table
from osipi_connector.extract.timeseries import FetchResult
from osipi_connector.lake.schemas import POINT_ATTRIBUTES
from osipi_connector.piwebapi.client import PIClient, SubRequest
from osipi_connector.plan import Tag

FIELDS = "Items.Name;Items.Value"


def fetch_point_attributes(client: PIClient, tags: Iterable[Tag], *, run_id: str, ingested_at: datetime) -> FetchResult:
    """POINT_ATTRIBUTES rows of every tag; a tag whose request failed is named in `failed`."""
    chosen = {tag.webid: tag for tag in tags}
    requests = {w: SubRequest(f"points/{w}/attributes", {"selectedFields": FIELDS}) for w in chosen}
    result, answers = send_per_tag(client, POINT_ATTRIBUTES, requests, chosen)
    rows = []
    for webid, content in answers:
        seen = set()
        for item in content.get("Items") or []:
            name = item.get("Name")
            if not name or name in seen:
                continue
            seen.add(name)
            text, number = attribute_value(item.get("Value"))
            rows.append(
                {
                    "tag_webid": webid,
                    "tag_name": chosen[webid].name,
                    "attribute_name": name,
                    "value": text,
                    "value_number": number,
                    "ingested_at": ingested_at,
                    "run_id": run_id,
                }
            )
        result.rows[webid] = len(seen)
    result.table = to_table(POINT_ATTRIBUTES, rows)
    return result


def attribute_value(value: Any) -> tuple[str | None, float | None]:
    """(text, number) of a point attribute's value: text for every value, the number too when it is one."""
    if value is None:
        return None, None
    if isinstance(value, str):
        return value, None
    if isinstance(value, bool):
        return str(value).lower(), None
    if isinstance(value, int | float):
        return orjson.dumps(value).decode(), float(value)
    return orjson.dumps(value).decode(), None
