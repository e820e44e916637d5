"""What the metadata datasets (points, AF, event frames) share: many GETs per `/batch` POST, and the
small conversions of PI JSON (times with PI's sentinel dates, WebIDs inside links) into column values.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import pyarrow as pa

from osipi_connector.lake.schemas import TableSpec
from osipi_connector.piwebapi.client import PIClient, PIWebAPIError, SubRequest, SubResponse
from osipi_connector.piwebapi.pitime import parse_iso

log = logging.getLogger(__name__)
SUB_REQUESTS_PER_POST = 200  # well under the ~500 some sites cap /batch at; one POST per 200 lookups
OPEN_END_YEAR = 9999  # PI's end time of an event frame still in progress: 9999-12-31T23:59:59Z
EPOCH_YEAR = 1970  # PI's "not set" date (e.g. AcknowledgedDate of a frame nobody acknowledged)


def get_many(
    client: PIClient, requests: Mapping[str, SubRequest], per_post: int = SUB_REQUESTS_PER_POST
) -> dict[str, SubResponse]:
    """Run independent GETs through the batch controller, `per_post` sub-requests per POST."""
    keys = list(requests)
    out: dict[str, SubResponse] = {}
    for i in range(0, len(keys), per_post):
        chunk = {k: requests[k] for k in keys[i : i + per_post]}
        out.update(client.batch(chunk))
    return out


def raise_failed(what: str, failed: Mapping[str, SubResponse]) -> None:
    """One error naming every object whose sub-request failed (first three shown), with PI's reason."""
    if not failed:
        return
    shown = []
    for key, sub in list(failed.items())[:3]:
        shown.append(f"{key} (HTTP {sub.status}: {error_text(sub.content)})")
    more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
    status = next(iter(failed.values())).status
    raise PIWebAPIError(f"{what} failed for {', '.join(shown)}{more}", status=status)


def listed_items(what: str, answers: Mapping[str, SubResponse], labels: Mapping[str, str]) -> dict[str, list[dict]]:
    """The `Items` of each answer. An object deleted in PI since it was listed (404) gets no items and a
    warning instead of failing the dataset; any other failure raises, naming the objects."""
    gone = [labels[key] for key, sub in answers.items() if sub.status == 404]
    if gone:
        log.warning("%s: %d object(s) no longer exist, skipped: %s", what, len(gone), ", ".join(gone[:5]))
    raise_failed(what, {labels[key]: sub for key, sub in answers.items() if not sub.ok and sub.status != 404})
    return {key: (sub.content.get("Items") or []) if sub.ok else [] for key, sub in answers.items()}


def error_text(content: Any) -> str:
    if isinstance(content, Mapping) and content.get("Errors"):
        return "; ".join(str(e) for e in content["Errors"])
    return str(content)[:200] if content else "no body"


def pi_time(text: str | None) -> datetime | None:
    """A PI timestamp as an aware UTC datetime; None for empty and for PI's sentinels (9999-12-31, 1970-01-01)."""
    if not text:
        return None
    value = parse_iso(text)
    return None if value.year in (OPEN_END_YEAR, EPOCH_YEAR) else value


def link_webid(links: Mapping[str, str] | None, name: str) -> str | None:
    """The WebID a link points at (`.../elements/{webId}` -> webId), without following it."""
    url = (links or {}).get(name)
    if not url:
        return None
    return url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1] or None


def looks_like_webid(text: str, marker: str) -> bool:
    """True when `text` is a WebID 2.0 of the given kind (`F1DS...`, `I1RD...`, `P1RD...`); paths are not."""
    return len(text) > 4 and text[0] in "FIPLD" and text[1] == "1" and text[2 : 2 + len(marker)] == marker


def to_table(spec: TableSpec, rows: list[dict[str, Any]]) -> pa.Table:
    """Rows (dicts keyed by column) as an Arrow table with exactly the spec's schema."""
    return pa.Table.from_pylist(rows, schema=spec.schema)
