"""Recorded values of a PI point as a pure function of (seed, point, time, now), vectorised.

Time is cut into sampling slots of the point's interval, starting at its creation. Slot 0 holds the
"Pt Created" system state; every later slot holds 0..3 events (exception reporting leaves gaps, and a
few slots carry several events at one timestamp). Hashing the slot number decides everything else, so
any window can be generated on its own and always agrees with every other window.

Three effects depend on `now`, which is what makes re-read windows and Stream Updates testable:
- late data: on "late" points each event becomes visible only `delay` after its timestamp;
- edits: a small share of events changes value `edit_delay` after its timestamp (flagged Substituted);
- deletions (off by default): a share of events disappears `delete_delay` after its timestamp.
`changes(since, now)` lists those effects between two instants, as Stream Updates reports them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from osipi_connector.piwebapi.pitime import TICKS_PER_SECOND
from osipi_connector.simulator import rng
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.points import SYSTEM_STATES, Point

SYSTEM_NAMES = tuple(SYSTEM_STATES)  # index 0 = no system state
STATE_NONE, STATE_SHUTDOWN, STATE_CREATED, STATE_IO_TIMEOUT, STATE_NO_DATA = 0, 1, 2, 3, 4
_SYS_CODE = {
    "Shutdown": STATE_SHUTDOWN,
    "Pt Created": STATE_CREATED,
    "I/O Timeout": STATE_IO_TIMEOUT,
    "No Data": STATE_NO_DATA,  # never recorded; what interpolation answers before a point's history
}
assert [_SYS_CODE[n] for n in SYSTEM_NAMES] == [1, 2, 3, 4]

DUPLICATE_2, DUPLICATE_3 = 0.03, 0.005  # share of slots with 2 / 3 events at one timestamp
IO_TIMEOUT, SHUTDOWN = 0.003, 0.001
QUESTIONABLE, ANNOTATED = 0.01, 0.002
CHUNK_SLOTS = 65_536


@dataclass
class Events:
    """A run of events in time order (or reverse order for descending queries)."""

    ticks: np.ndarray  # int64, 100 ns since the Unix epoch
    value: np.ndarray  # float64: analog value, digital state index, or string serial
    system: np.ndarray  # int8: 0, or a STATE_* code (bad value, Good = false)
    questionable: np.ndarray  # bool
    substituted: np.ndarray  # bool
    annotated: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.ticks)

    def take(self, index: np.ndarray | slice) -> Events:
        return Events(*(getattr(self, f)[index] for f in _FIELDS))

    @staticmethod
    def concat(parts: list[Events]) -> Events:
        if not parts:
            return empty_events()
        return Events(*(np.concatenate([getattr(p, f) for p in parts]) for f in _FIELDS))


_FIELDS = ("ticks", "value", "system", "questionable", "substituted", "annotated")


# Stream Updates' event actions (AF SDK AFDataPipeAction, as PI Web API names them)
ADD, UPDATE, DELETE = "Add", "Update", "Delete"


@dataclass
class Changes:
    """Change events in the order they happened: `action[i]` (ADD / UPDATE / DELETE) applies to event i."""

    action: np.ndarray  # object: str
    events: Events

    def __len__(self) -> int:
        return len(self.action)

    @staticmethod
    def empty() -> Changes:
        return Changes(np.empty(0, dtype=object), empty_events())


def empty_events() -> Events:
    return Events(np.empty(0, np.int64), np.empty(0), np.empty(0, np.int8), *(np.empty(0, bool) for _ in range(3)))


@dataclass
class Sampling:
    """The value model's parameters of a point: scalars for one point, or arrays with one entry per slot or
    event when many points are generated together (NumPy gives the same numbers either way)."""

    point_type: Any  # str, or an array of str
    event_rate: Any
    interval: Any  # ticks
    created: Any  # ticks
    subsecond: Any
    late: Any
    mid: Any
    amplitude: Any
    period_s: Any
    phase: Any
    n_states: Any  # digital states (2 when the point has no set)

    @staticmethod
    def of(point: Point) -> Sampling:
        digital = point.digital_set
        return Sampling(
            point.point_type,
            point.kind.event_rate,
            point.interval_ticks,
            point.created_ticks,
            point.subsecond,
            point.late,
            point.mid,
            point.amplitude,
            point.period_s,
            point.phase,
            len(digital.states) if digital else 2,
        )

    @staticmethod
    def of_many(points: list[Point]) -> Sampling:
        """One entry per point (index them with the points' positions)."""
        each = [Sampling.of(p) for p in points]
        columns = {}
        for name in _SAMPLING:
            values = [getattr(s, name) for s in each]
            if name == "point_type":
                columns[name] = np.array(values)
            elif name in ("subsecond", "late"):
                columns[name] = np.array(values, dtype=bool)
            elif name in ("interval", "created", "n_states"):
                columns[name] = np.array(values, dtype=np.int64)
            else:
                columns[name] = np.array(values, dtype=np.float64)
        return Sampling(**columns)

    def take(self, index: np.ndarray) -> Sampling:
        """The entries at `index` (a mask or positions); scalars stay as they are."""
        return Sampling(**{name: _take(getattr(self, name), index) for name in _SAMPLING})


_SAMPLING = tuple(Sampling.__dataclass_fields__)


def _take(value: Any, index: np.ndarray | None) -> Any:
    return value[index] if index is not None and isinstance(value, np.ndarray) else value


class ValueModel:
    def __init__(self, config: SimConfig):
        self.seed = config.seed
        self.late_lo = int(config.late_delay_s[0] * TICKS_PER_SECOND)
        self.late_hi = int(config.late_delay_s[1] * TICKS_PER_SECOND)
        self.edit_share = config.edit_share
        self.edit_delay = int(config.edit_delay_s * TICKS_PER_SECOND)
        self.delete_share = config.delete_share
        self.delete_delay = int(config.delete_delay_s * TICKS_PER_SECOND)

    # --- slots ---------------------------------------------------------------------------------------
    def slots(self, point: Point, k0: int, k1: int, now: int) -> Events:
        """Every event visible at `now` in slots k0..k1-1, in time order."""
        k0 = max(k0, 0)
        if k1 <= k0:
            return empty_events()
        k = np.arange(k0, k1, dtype=np.int64)
        sampling = Sampling.of(point)
        drawn = self._drawn(k, rng.hash_keys(self.seed, point.index, k), sampling, None)
        events, _ = self._visible(sampling, drawn[:4], now, None)
        return events

    def slots_many(self, points: list[Point], k0: np.ndarray, k1: np.ndarray, now: int) -> tuple[Events, np.ndarray]:
        """`slots` of many points at once (the same events, with one NumPy pass over all of them instead of
        one per point): every point's events in turn, and the position in `points` of each event's point."""
        k0 = np.maximum(k0, 0)
        counts = np.maximum(k1 - k0, 0)
        slot_owner = np.repeat(np.arange(len(points)), counts)
        k = np.arange(len(slot_owner), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts - k0, counts)
        prefix = rng.hash_keys(self.seed, np.array([p.index for p in points], dtype=np.int64))
        h = rng.extend(prefix[slot_owner], k)
        sampling = Sampling.of_many(points)
        *drawn, event_owner = self._drawn(k, h, sampling, slot_owner)
        events, owner = self._visible(sampling, tuple(drawn), now, event_owner)
        assert owner is not None
        return events, owner

    def _visible(
        self, sampling: Sampling, drawn: tuple[np.ndarray, ...], now: int, owner: np.ndarray | None
    ) -> tuple[Events, np.ndarray | None]:
        """The events of `drawn` visible at `now`, with their states and values (`owner` follows them)."""
        k, h, ticks, visible_at = drawn
        visible = visible_at <= now
        if not visible.all():
            k, h, ticks = k[visible], h[visible], ticks[visible]
            owner = owner[visible] if owner is not None else None
        system, questionable, annotated, editable, deletable = self._states(h, k)
        if self.delete_share:
            kept = ~(deletable & (ticks + self.delete_delay <= now))
            if not kept.all():
                k, h, ticks, system = k[kept], h[kept], ticks[kept], system[kept]
                questionable, annotated, editable = questionable[kept], annotated[kept], editable[kept]
                owner = owner[kept] if owner is not None else None
        edited = editable & (ticks + self.edit_delay <= now)
        value = self._values(sampling, ticks, h, edited, k, owner)
        return Events(ticks, value, system, questionable, edited, annotated), owner

    def _draw(self, point: Point, k0: int, k1: int) -> tuple[np.ndarray, ...] | None:
        """(slot, event hash, ticks, visible-from ticks) of every event in slots k0..k1-1 whatever `now` is."""
        k0 = max(k0, 0)
        if k1 <= k0:
            return None
        k = np.arange(k0, k1, dtype=np.int64)
        return self._drawn(k, rng.hash_keys(self.seed, point.index, k), Sampling.of(point), None)[:4]

    def _drawn(self, k: np.ndarray, h: np.ndarray, sampling: Sampling, owner: np.ndarray | None) -> tuple[Any, ...]:
        """`_draw` from slots `k` and their hashes `hash_keys(seed, point, k)`. `sampling` holds the point's
        parameters, or with `owner` (each slot's position in them) those of many points; the last member
        is each event's owner."""
        exists = (rng.uniform(h, 1) < _take(sampling.event_rate, owner)) | (k == 0)
        k, h = k[exists], h[exists]
        dup = rng.uniform(h, 2)
        mult = 1 + (dup < DUPLICATE_2).astype(np.int64) + (dup < DUPLICATE_3)
        mult[k == 0] = 1
        k, h = np.repeat(k, mult), np.repeat(h, mult)
        if owner is not None:
            owner = np.repeat(owner[exists], mult)
        sub = np.arange(len(k)) - np.repeat(np.cumsum(mult) - mult, mult)  # 0, 1, 2 within a slot
        base = h  # the slot's hash, hash_keys(seed, point, k)
        h = rng.hash_keys(h.view(np.int64), sub)  # per-event hash
        interval = _take(sampling.interval, owner)
        offset = (rng.uniform(base, 3) * interval).astype(np.int64)
        subsecond = _take(sampling.subsecond, owner)
        if isinstance(subsecond, np.ndarray):
            offset = np.where(subsecond, offset, offset - offset % TICKS_PER_SECOND)
        elif not subsecond:
            offset -= offset % TICKS_PER_SECOND
        offset[k == 0] = 0
        ticks = _take(sampling.created, owner) + k * interval + offset
        # visibility: late points get their data after a per-event delay
        late = _take(sampling.late, owner)
        several = isinstance(late, np.ndarray)
        if late.any() if several else late:
            delayed = ticks + self.late_lo + (rng.uniform(h, 4) * (self.late_hi - self.late_lo)).astype(np.int64)
            visible_at = np.where(late, delayed, ticks) if several else delayed
        else:
            visible_at = ticks
        return k, h, ticks, visible_at, owner

    def _states(self, h: np.ndarray, k: np.ndarray) -> tuple[np.ndarray, ...]:
        """System state, Questionable, Annotated, and whether the event is ever edited / deleted."""
        u_state = rng.uniform(h, 5)
        system = np.where(u_state < IO_TIMEOUT, STATE_IO_TIMEOUT, 0).astype(np.int8)
        system[(u_state >= IO_TIMEOUT) & (u_state < IO_TIMEOUT + SHUTDOWN)] = STATE_SHUTDOWN
        system[k == 0] = STATE_CREATED
        u_flag = rng.uniform(h, 6)
        questionable = (u_flag < QUESTIONABLE) & (system == 0)
        annotated = (u_flag >= QUESTIONABLE) & (u_flag < QUESTIONABLE + ANNOTATED) & (system == 0)
        editable = (rng.uniform(h, 7) < self.edit_share) & (system == 0)
        deletable = (rng.uniform(h, 10) < self.delete_share) & (system == 0) if self.delete_share else editable & False
        return system, questionable, annotated, editable, deletable

    # --- changes (Stream Updates) ----------------------------------------------------------------------
    def changes(self, point: Point, since: int, now: int) -> Changes:
        """What changed in the point's history between `since` and `now`, in the order it changed: values
        that became visible (Add at the end of the series, Update when they land before a later value),
        edits (Update with the new value) and removals (Delete with the removed value)."""
        horizon = max(self.late_hi if point.late else 0, self.edit_delay, self.delete_delay if self.delete_share else 0)
        k0 = max(0, self.slot_of(point, since - horizon) - 1)
        drawn = self._draw(point, k0, self.last_slot(point, now) + 1)
        if drawn is None or now <= since:
            return Changes.empty()
        k, h, ticks, visible_at = drawn
        system, questionable, annotated, editable, deletable = self._states(h, k)
        never = np.iinfo(np.int64).max
        edit_at = np.where(editable, ticks + self.edit_delay, never)
        delete_at = np.where(deletable, ticks + self.delete_delay, never)
        before = (visible_at <= since) & (delete_at > since)
        after = (visible_at <= now) & (delete_at > now)
        added = after & ~before
        updated = before & after & (edit_at > since) & (edit_at <= now)
        deleted = before & ~after
        changed_at = np.where(added, visible_at, np.where(updated, edit_at, delete_at))
        # each event with its value as the change left it: a Delete carries the removed value
        edited = np.where(deleted, edit_at <= since, edit_at <= now)
        pick = added | updated | deleted
        idx = np.flatnonzero(pick)
        order = idx[np.lexsort((ticks[idx], changed_at[idx]))]
        events = Events(
            ticks[order],
            self._values(point, ticks[order], h[order], edited[order], k[order]),
            system[order],
            questionable[order],
            edited[order],
            annotated[order],
        )
        # Add: after every value the series held at that moment; else an Update (a value before a later one)
        latest = ticks[before].max() if before.any() else np.iinfo(np.int64).min
        action = np.empty(len(order), dtype=object)
        for i, j in enumerate(order):
            if deleted[j]:
                action[i] = DELETE
            elif updated[j] or ticks[j] < latest:
                action[i] = UPDATE
            else:
                action[i] = ADD
            if not deleted[j]:
                latest = max(latest, ticks[j])
        return Changes(action, events)

    def _values(
        self,
        sampling: Sampling | Point,
        ticks: np.ndarray,
        h: np.ndarray,
        edited: np.ndarray,
        k: np.ndarray,
        owner: np.ndarray | None = None,
    ) -> np.ndarray:
        """Each event's value; `owner` as in `_drawn`."""
        if isinstance(sampling, Point):
            sampling = Sampling.of(sampling)
        if owner is None:
            return self._values_of_type(sampling.point_type, sampling, ticks, h, edited, k, None)
        value = np.empty(len(ticks))
        for ptype in set(sampling.point_type.tolist()):  # several points: each type on its own
            rows = np.flatnonzero((sampling.point_type == ptype)[owner])
            value[rows] = self._values_of_type(
                ptype, sampling, ticks[rows], h[rows], edited[rows], k[rows], owner[rows]
            )
        return value

    @staticmethod
    def _values_of_type(
        ptype: str,
        p: Sampling,
        ticks: np.ndarray,
        h: np.ndarray,
        edited: np.ndarray,
        k: np.ndarray,
        owner: np.ndarray | None,
    ) -> np.ndarray:
        if ptype == "Digital":
            n_states = _take(p.n_states, owner)
            state = (rng.uniform(h, 9) * (n_states - 0.2)).astype(np.int64)  # the last state (fault) is rarer
            return np.where(edited, (state + 1) % n_states, state).astype(np.float64)
        if ptype == "String":
            return (k + edited * 1_000_000).astype(np.float64)
        seconds = (ticks - _take(p.created, owner)) / TICKS_PER_SECOND
        noise = rng.uniform(h, 8) - 0.5
        amplitude = _take(p.amplitude, owner)
        angle = 6.283185307179586 * seconds / _take(p.period_s, owner) + _take(p.phase, owner)
        wave = _take(p.mid, owner) + amplitude * np.sin(angle)
        value = wave + amplitude * 0.05 * noise + edited * amplitude * 0.1
        if ptype == "Int32":
            return np.floor(value).astype(np.float64)
        if ptype == "Float32":
            return np.round(value, 3)
        return np.round(value, 6)

    # --- windows -------------------------------------------------------------------------------------
    def slot_of(self, point: Point, ticks: int) -> int:
        return (ticks - point.created_ticks) // point.interval_ticks

    def last_slot(self, point: Point, now: int) -> int:
        """The slot holding `now` (no event is visible beyond it)."""
        return self.slot_of(point, now)

    def window(self, point: Point, start: int, end: int, now: int, limit: int | None) -> Events:
        """Events with start <= t <= end visible at `now`; descending when end < start. At most
        `limit` events (the first ones in the requested order)."""
        return Events.concat(list(self.iter_window(point, start, end, now, limit)))

    def iter_window(
        self, point: Point, start: int, end: int, now: int, limit: int | None, chunk_slots: int | None = None
    ) -> Iterator[Events]:
        """`window` generated and yielded chunk by chunk (a response can go out while the rest is made)."""
        descending = end < start
        lo, hi = (end, start) if descending else (start, end)
        hi = min(hi, now)
        if hi < point.created_ticks or hi < lo:
            return
        k_lo, k_hi = max(0, self.slot_of(point, lo)), self.slot_of(point, hi) + 1
        found = 0
        chunk = chunk_slots or (
            CHUNK_SLOTS if limit is None else max(1024, min(CHUNK_SLOTS, int(limit * 1.3 / point.kind.event_rate)))
        )
        while k_lo < k_hi and (limit is None or found < limit):
            if descending:
                a, b = max(k_lo, k_hi - chunk), k_hi
                k_hi = a
            else:
                a, b = k_lo, min(k_hi, k_lo + chunk)
                k_lo = b
            events = self.slots(point, a, b, now)
            keep = (events.ticks >= lo) & (events.ticks <= hi)
            events = events.take(keep) if not keep.all() else events
            if descending:
                events = events.take(slice(None, None, -1))
            if limit is not None and found + len(events) > limit:
                events = events.take(slice(0, limit - found))
            if len(events):
                yield events
            found += len(events)

    def before(self, point: Point, t: int, now: int, inclusive: bool) -> Events:
        """The last event at or before (inclusive) / strictly before `t` (the newest of a duplicate run)."""
        t = min(t, now)
        end = t if inclusive else t - 1
        if end < point.created_ticks:
            return empty_events()
        k = self.slot_of(point, end)
        span = 16
        while k >= 0:
            events = self.slots(point, max(0, k - span + 1), k + 1, now)
            events = events.take(events.ticks <= end)
            if len(events):
                return events.take(slice(-1, None))
            k -= span
            span *= 2
        return empty_events()

    def after(self, point: Point, t: int, now: int) -> Events:
        """The first event strictly after `t` that is visible at `now`."""
        if t >= now:
            return empty_events()
        k = max(0, self.slot_of(point, t + 1))
        last = self.last_slot(point, now)
        span = 16
        while k <= last:
            events = self.slots(point, k, min(last + 1, k + span), now)
            events = events.take(events.ticks > t)
            if len(events):
                return events.take(slice(0, 1))
            k += span
            span *= 2
        return empty_events()
