"""Work units of a timeseries extraction: groups of tags × bounded time windows, and the run's `Plan`.

A unit is what one worker fetches and holds in memory at once, so its size is bounded by `batch_size` tags
and `max_window` of time however long the run's window is. Windows are cut on a grid aligned to the epoch,
so tags with different watermarks still share units (one /batch request serves them all), and adjacent
pieces of one tag never overlap (all but the last leave the values at their end to the next piece).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from osipi_connector.extract.timeseries import TagWindow
from osipi_connector.piwebapi.pitime import UTC

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Tag:
    webid: str
    name: str | None = None


@dataclass(frozen=True)
class WorkUnit:
    index: int
    windows: tuple[TagWindow, ...]
    slot: int = 0  # grid slot (time bucket of `max_window`): commits never mix slots, see runner

    @property
    def webids(self) -> list[str]:
        return [w.webid for w in self.windows]


def split_window(start: datetime, end: datetime, max_window: timedelta) -> list[tuple[int, datetime, datetime]]:
    """`[start, end]` cut at multiples of `max_window` since the epoch: (grid slot, piece start, piece end)."""
    if end <= start:
        return []
    pieces = []
    slot = (start - _EPOCH) // max_window
    piece_start = start
    while piece_start < end:
        piece_end = min(_EPOCH + (slot + 1) * max_window, end)
        pieces.append((slot, piece_start, piece_end))
        piece_start, slot = piece_end, slot + 1
    return pieces


def plan_units(
    windows: Iterable[tuple[Tag, datetime, datetime]], *, batch_size: int, max_window: timedelta
) -> list[WorkUnit]:
    """Units in time order: for each grid slot, its tags in WebID order in groups of at most `batch_size`.

    WebID order makes consecutive commits cover disjoint tag ranges, so the Delta files they write have
    non-overlapping key statistics and later commits can be appended instead of MERGEd."""
    by_slot: dict[int, list[TagWindow]] = defaultdict(list)
    for tag, start, end in windows:
        pieces = split_window(start, end, max_window)
        for i, (slot, piece_start, piece_end) in enumerate(pieces):
            last = i == len(pieces) - 1
            by_slot[slot].append(TagWindow(tag.webid, tag.name, piece_start, piece_end, include_end=last))
    units: list[WorkUnit] = []
    for slot in sorted(by_slot):
        group = sorted(by_slot[slot], key=lambda w: w.webid)  # tight tag ranges per file: see lake/new_rows.py
        for i in range(0, len(group), batch_size):
            units.append(WorkUnit(len(units), tuple(group[i : i + batch_size]), slot))
    return units


@dataclass(frozen=True)
class Plan:
    """One extraction's work, built once on the driver: the selected tags, each tag's window (tags with an
    empty window are left out) and the units covering those windows. Executors (executor.py) only run units."""

    tags: tuple[Tag, ...]
    windows: tuple[tuple[Tag, datetime, datetime], ...]
    units: tuple[WorkUnit, ...]

    @classmethod
    def build(
        cls,
        tags: Iterable[Tag],
        windows: Iterable[tuple[Tag, datetime, datetime]],
        *,
        batch_size: int,
        max_window: timedelta,
    ) -> Plan:
        windows = tuple(windows)
        units = plan_units(windows, batch_size=batch_size, max_window=max_window)
        return cls(tuple(tags), windows, tuple(units))

    def spans(self) -> dict[str, tuple[Tag, datetime, datetime]]:
        """WebID -> (tag, window start, window end)."""
        return {tag.webid: (tag, start, end) for tag, start, end in self.windows}
