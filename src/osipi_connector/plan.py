"""Work units of a timeseries extraction: groups of tags × bounded time windows, and the run's `Plan`.

A unit is what one worker fetches and holds in memory at once, so its size is bounded by `batch_size` tags
and `max_window` of time however long the run's window is. Windows are cut on a grid aligned to the epoch,
so tags with different watermarks still share units (one /batch request serves them all), and adjacent
pieces of one tag never overlap (all but the last leave the values at their end to the next piece).
"""

from __future__ import annotations

import math
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


class CommitGrid:
    """Where the runner commits timeseries rows: every `span` units of a grid slot, counted from the slot's first
    unit; `span` is the power of two nearest to commit_rows / (mean rows per unit), the mean taken over the run's
    first units until they hold half of commit_rows. A commit holds ~0.7-1.4 x commit_rows, never more than
    twice (`must_commit`, memory).

    Why not "every `commit_rows` rows": each commit writes the rows the next run re-reads (its lookback) into a
    file of their own, and the next run MERGEs its changed rows into that file. Boundaries by row count moved
    with the data (run 1 reads 60 minutes, the next 70), so a file was split between two commits of the next run
    and rewritten by both: at 30,000 tags, 6.3 M rows copied instead of 3.3 M. Boundaries counted in units fall
    on the same tags in every run with the same span; the nearest power of two keeps the span when the rows per
    unit change by less than ~40 % (60 -> 70 minutes), and powers of two nest, so a run whose span does differ
    still cuts each file into at most a few commits."""

    def __init__(self, units: Iterable[WorkUnit], commit_rows: int) -> None:
        self.commit_rows = commit_rows
        self.span: int | None = None
        self._seen = [0, 0]  # units, rows before the span is set
        self._first: dict[int, int] = {}
        for unit in units:
            self._first.setdefault(unit.slot, unit.index)

    def observe(self, units: int, rows: int) -> None:
        """Rows fetched for `units` more units; sets the span once the first units hold half of commit_rows."""
        if self.span is not None:
            return
        self._seen[0] += units
        self._seen[1] += rows
        if self._seen[1] * 2 >= self.commit_rows:
            mean = self._seen[1] / self._seen[0]
            self.span = 2 ** max(0, round(math.log2(self.commit_rows / mean)))

    def starts_commit(self, unit: WorkUnit) -> bool:
        """Whether `unit` begins a new commit (the rows buffered before it are committed first)."""
        if self.span is None:
            return False
        return (unit.index - self._first.get(unit.slot, unit.index)) % self.span == 0

    def must_commit(self, buffered: int) -> bool:
        """A hard cap whatever the grid says: units much larger than the first ones."""
        return buffered >= 2 * self.commit_rows
