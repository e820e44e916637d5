"""`bronze.pi_current_value`: each point's snapshot (`streams/{webId}/value`), many points per `/batch` POST.

A snapshot, not a history: the MERGE on tag_webid keeps one row per point, the value of the latest run.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from osipi_connector.extract.pi_json import error_text, get_many, to_table
from osipi_connector.extract.timed_values import TIMED_VALUE_FIELDS, timestamp, value_columns
from osipi_connector.extract.timeseries import FetchResult
from osipi_connector.lake.schemas import CURRENT_VALUE
from osipi_connector.piwebapi.client import PIClient, PIWebAPIError, SubRequest
from osipi_connector.plan import Tag


def fetch_current_values(client: PIClient, tags: Iterable[Tag], *, run_id: str, ingested_at: datetime) -> FetchResult:
    """CURRENT_VALUE rows, one per tag; a tag whose request failed is named in `failed`."""
    chosen = {tag.webid: tag for tag in tags}
    requests = {w: SubRequest(f"streams/{w}/value", {"selectedFields": TIMED_VALUE_FIELDS}) for w in chosen}
    result = FetchResult(CURRENT_VALUE.schema.empty_table())
    if not requests:
        return result
    try:
        answers = get_many(client, requests)
    except PIWebAPIError as exc:
        result.failed = dict.fromkeys(chosen, f"batch request failed: {exc}")
        return result
    result.requests = len(requests)
    rows = []
    for webid, answer in answers.items():
        if not answer.ok or not isinstance(answer.content, dict):
            result.failed[webid] = f"HTTP {answer.status}: {error_text(answer.content)}"
            continue
        rows.append(
            {
                "tag_webid": webid,
                "tag_name": chosen[webid].name,
                "timestamp": timestamp(answer.content),
                **value_columns(answer.content),
                "ingested_at": ingested_at,
                "run_id": run_id,
            }
        )
        result.rows[webid] = 1
    result.table = to_table(CURRENT_VALUE, rows)
    return result
