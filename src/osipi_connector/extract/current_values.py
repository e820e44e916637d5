"""`bronze.pi_current_value`: each point's snapshot (`streams/{webId}/value`), many points per `/batch` POST.

A snapshot, not a history: the MERGE on tag_webid keeps one row per point, the value of the latest run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from osipi_connector.extract.per_tag import send_per_tag
from osipi_connector.extract.pi_json import to_table
from osipi_connector.extract.timed_values import TIMED_VALUE_FIELDS, timestamp, value_columns
from osipi_connector.extract.timeseries import FetchResult
from osipi_connector.lake.schemas import CURRENT_VALUE
from osipi_connector.piwebapi.client import PIClient, SubRequest
from osipi_connector.plan import Tag


def fetch_current_values(client: PIClient, tags: Iterable[Tag], *, run_id: str, ingested_at: datetime) -> FetchResult:
    """CURRENT_VALUE rows, one per tag; a tag whose request failed is named in `failed`."""
    chosen = {tag.webid: tag for tag in tags}
    requests = {w: SubRequest(f"streams/{w}/value", {"selectedFields": TIMED_VALUE_FIELDS}) for w in chosen}
    result, answers = send_per_tag(client, CURRENT_VALUE, requests, chosen)
    rows = []
    for webid, content in answers:
        rows.append(
            {
                "tag_webid": webid,
                "tag_name": chosen[webid].name,
                "timestamp": timestamp(content),
                **value_columns(content),
                "ingested_at": ingested_at,
                "run_id": run_id,
            }
        )
        result.rows[webid] = 1
    result.table = to_table(CURRENT_VALUE, rows)
    return result
