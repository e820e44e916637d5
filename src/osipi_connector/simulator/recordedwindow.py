"""A recorded answer's Items, made on their own or together with the other windows of a /batch.

The connector's hourly run asks for a few hundred values of each of thousands of points, a hundred
sub-requests per /batch. Point by point, the simulator's CPU went into the fixed cost of some hundred NumPy
calls per window, not into the values. `prefill` makes the windows of a batch's sub-requests in one pass
(`ValueModel.slots_many`, `jsonrows.encode_arrays`); each answer is the same bytes the window would give on
its own (tests/simulator/test_served_bytes.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from osipi_connector.simulator import jsonfast, jsonrows
from osipi_connector.simulator.http import LazyJson
from osipi_connector.simulator.points import Point
from osipi_connector.simulator.values import Events, ValueModel

STREAM_CHUNK_SLOTS = 16_384  # slots generated per piece of a streamed recorded answer; longer windows stream


class RecordedWindow(LazyJson):
    """The Items of `/streams/{id}/recorded` with boundaryType Inside: generated while the answer is sent
    (the client reads the first values while the server makes the rest), unless `prefill` made them."""

    def __init__(
        self, model: ValueModel, point: Point, start: int, end: int, now: int, limit: int, fields: tuple[str, ...]
    ):
        super().__init__(self._pieces)
        self.model, self.point, self.fields = model, point, fields
        self.start, self.end, self.now, self.limit = start, end, now, limit
        self._made: bytes | None = None

    def _pieces(self) -> Iterator[bytes]:
        if self._made is not None:
            made, self._made = self._made, None  # handed out once: a batch's answers are not all held
            yield made
            return
        parts = self.model.iter_window(self.point, self.start, self.end, self.now, self.limit, STREAM_CHUNK_SLOTS)
        yield from jsonfast.encode_parts(self.point, parts, self.fields)

    def slot_range(self) -> tuple[int, int] | None:
        """Slots k0..k1-1 an ascending window covers (k0 == k1: no value), None for a descending one."""
        if self.end < self.start:
            return None
        hi = min(self.end, self.now)
        if hi < self.point.created_ticks or hi < self.start:
            return 0, 0
        return max(0, self.model.slot_of(self.point, self.start)), self.model.slot_of(self.point, hi) + 1


def prefill(windows: list[RecordedWindow]) -> None:
    """Make the Items of ascending windows of at most `STREAM_CHUNK_SLOTS` slots together (the others are
    made as they are sent). Windows of one model, clock and field selection go through NumPy as one.

    A window longer than its maxCount needs is cut to the slots that should hold maxCount values (as
    `ValueModel.iter_window` sizes its chunks); the rare window they do not fill is made on its own."""
    groups: dict[tuple[int, int, tuple[str, ...]], list[tuple[RecordedWindow, int, int, int]]] = {}
    for window in windows:
        span = window.slot_range()
        if span is None or span[1] - span[0] > STREAM_CHUNK_SLOTS:
            continue
        k0, k1 = span
        if k0 == k1:
            window._made = b"[]"
            continue
        enough = int(window.limit * 1.3 / window.point.kind.event_rate) + 16
        groups.setdefault((id(window.model), window.now, window.fields), []).append(
            (window, k0, min(k1, k0 + enough), k1)
        )
    for group in groups.values():
        _make(group)


def _make(group: list[tuple[RecordedWindow, int, int, int]]) -> None:
    first = group[0][0]
    model, now, fields = first.model, first.now, first.fields
    points = [w.point for w, *_ in group]
    k0 = np.array([k for _, k, _, _ in group], dtype=np.int64)
    k1 = np.array([k for _, _, k, _ in group], dtype=np.int64)
    events, owner = model.slots_many(points, k0, k1, now)
    lo = np.array([w.start for w, *_ in group], dtype=np.int64)
    hi = np.array([min(w.end, now) for w, *_ in group], dtype=np.int64)
    inside = (events.ticks >= lo[owner]) & (events.ticks <= hi[owner])
    events, owner = events.take(inside), owner[inside]
    counts = np.bincount(owner, minlength=len(group))
    limit = np.array([w.limit for w, *_ in group])
    position = np.arange(len(owner)) - np.repeat(np.cumsum(counts) - counts, counts)
    kept = position < limit[owner]  # maxCount: the first values
    if not kept.all():
        events, owner = events.take(kept), owner[kept]
    made = _encode(points, events, owner, fields)
    short = (counts < limit) & (k1 < np.array([k for *_, k in group]))  # cut too short: made on its own
    for (window, *_), text, cut in zip(group, made, short.tolist()):
        if not cut:
            window._made = text


def _encode(points: list[Point], events: Events, owner: np.ndarray, fields: tuple[str, ...]) -> list[bytes]:
    """Each point's Items array: numeric points of one kind of number as one byte matrix, the others (and
    layouts `jsonrows` does not build) point by point."""
    out: list[bytes] = [b""] * len(points)
    kinds: dict[int, list[int]] = {}
    as_rows = fields[:2] == ("Timestamp", "Value")
    for i, point in enumerate(points):
        decimals = jsonrows.DECIMALS.get(point.point_type) if as_rows else None
        kinds.setdefault(-1 if decimals is None else decimals, []).append(i)
    ends = np.cumsum(np.bincount(owner, minlength=len(points))).tolist()
    for decimals, members in kinds.items():
        if decimals == -1:
            for i in members:
                part = events.take(slice(ends[i - 1] if i else 0, ends[i]))
                out[i] = jsonfast.encode_items(points[i], part, fields)
            continue
        if len(members) == len(points):
            part, part_owner = events, owner
        else:
            position = np.full(len(points), -1)
            position[members] = np.arange(len(members))
            part_owner = position[owner]
            mine = part_owner >= 0
            part, part_owner = events.take(mine), part_owner[mine]
        texts = jsonrows.encode_arrays(
            [points[i] for i in members], part, part_owner, fields, jsonfast.flag_combos(part)
        )
        for i, text in zip(members, texts):
            out[i] = text
    return out
