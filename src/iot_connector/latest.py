"""The latest value of each tag of one source, for the GUI's live tag view (what an operator checks first
after adding a source: is the value the machine shows arriving, with good quality, how often).

Why this shape: `observe` runs on every batch a source hands over, so per record it does a dict update and
a count, in C-level loops, nothing more (the record itself is kept, not copied). The table is bounded: tags beyond
`max_tags` are counted, not stored, so a wildcard subscription cannot grow the agent's memory. Rates are
worked out when someone looks (`snapshot`), from counts a few seconds apart.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Sequence
from operator import attrgetter
from typing import Any

from iot_connector.model import Record

MAX_TAGS = 1000  # per source
RATE_WINDOW_S = 5.0  # updates/s are averaged over 5..10 s
MAX_TEXT = 200  # characters of a string/raw value shown
_TAG = attrgetter("tag_id")


def shown_value(record: Record) -> Any:
    """The record's value as the GUI shows it: the typed column that is set, text cut to MAX_TEXT characters,
    non-finite floats as text (JSON has no NaN)."""
    for value in (record.value_long, record.value_bool, record.value_double, record.value_string, record.value_raw):
        if value is None:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            return str(value)
        if isinstance(value, str) and len(value) > MAX_TEXT:
            return value[:MAX_TEXT] + "…"
        return value
    return None


class LatestValues:
    """Tag id -> last record and number of updates, for one source."""

    def __init__(self, max_tags: int = MAX_TAGS) -> None:
        self.max_tags = max_tags
        self.latest: dict[str, Record] = {}
        self.counts: Counter[str] = Counter()
        self.not_shown = 0  # updates of tags beyond max_tags
        now = time.monotonic()
        self._older: tuple[float, dict[str, int]] = (now, {})  # counts at the start of the rate window
        self._newer: tuple[float, dict[str, int]] = (now, {})

    def observe(self, records: Sequence[Record]) -> None:
        tags = list(map(_TAG, records))  # C-level loops: about 0.2 µs a record
        self.latest.update(zip(tags, records))
        self.counts.update(tags)
        while len(self.latest) > self.max_tags:  # the newest tags go: the first max_tags seen stay
            tag = next(reversed(self.latest))
            del self.latest[tag]
            self.not_shown += self.counts.pop(tag)

    def snapshot(self, limit: int) -> dict[str, Any]:
        """Up to `limit` tags, sorted by tag id, with value, quality, timestamps and updates/s."""
        now = time.monotonic()
        if now - self._newer[0] >= RATE_WINDOW_S:
            self._older, self._newer = self._newer, (now, dict(self.counts))
        since, before = self._older
        elapsed = max(now - since, 1e-3)
        tags = []
        for tag in sorted(self.latest)[:limit]:
            record = self.latest[tag]
            tags.append(
                {
                    "tag_id": tag[:MAX_TEXT],
                    "tag_path": (record.tag_path or "")[:MAX_TEXT],
                    "value": shown_value(record),
                    "data_type": record.data_type[:MAX_TEXT],
                    "quality": record.quality,
                    "unit": record.unit,
                    "source_ts": record.source_ts,
                    "edge_ts": record.edge_ts,
                    "updates": self.counts[tag],
                    "updates_per_s": round((self.counts[tag] - before.get(tag, 0)) / elapsed, 2),
                }
            )
        return {"tags": tags, "total": len(self.latest), "not_shown_updates": self.not_shown}
