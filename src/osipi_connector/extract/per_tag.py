"""One `/batch` of per-tag sub-requests: the shared front half of the per-tag datasets' fetches.

Keys are a tag's WebID, or `"<webid>|<piece>"` when one tag needs several windows; WebIDs never hold `|`.
A tag whose sub-request failed (after the client's retries) is named in `failed` with PI's own error text,
so the run keeps its watermark where it was and says why.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from osipi_connector.extract.pi_json import error_text, get_many
from osipi_connector.extract.timeseries import FetchResult
from osipi_connector.lake.schemas import TableSpec
from osipi_connector.piwebapi.client import PIClient, PIWebAPIError, SubRequest


def tag_of(key: str) -> str:
    """The tag WebID of a sub-request key."""
    return key.split("|", 1)[0]


def send_per_tag(
    client: PIClient, spec: TableSpec, requests: Mapping[str, SubRequest], tags: Iterable[str]
) -> tuple[FetchResult, list[tuple[str, dict[str, Any]]]]:
    """An empty FetchResult of `spec` (requests counted, failures named) and the good answers as (key, body).

    A failed `/batch` POST fails every tag in `tags`; a failed sub-request fails its own tag only.
    """
    result = FetchResult(spec.schema.empty_table())
    if not requests:
        return result, []
    try:
        sent = client.requests_sent()
        answers = get_many(client, dict(requests))
    except PIWebAPIError as exc:
        result.failed = dict.fromkeys(tags, f"batch request failed: {exc}")
        return result, []
    result.requests = client.requests_sent() - sent  # HTTP requests, as FetchResult counts them
    good = []
    for key, answer in answers.items():
        if answer.ok and isinstance(answer.content, dict):
            good.append((key, answer.content))
        else:
            result.failed[tag_of(key)] = f"HTTP {answer.status}: {error_text(answer.content)}"
    return result, good
