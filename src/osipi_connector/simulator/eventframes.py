"""Event frames as a pure function of (seed, slot), generated vectorised for just the slots a search needs.

Time from `points.HISTORY_START` is cut into `event_frames_per_day` slots a day; slot `k` holds one frame
that starts somewhere in it and lasts minutes to hours. A frame exists once its start is <= now and stays
open (PI's end time 9999-12-31T23:59:59Z) until start + duration <= now, so frames close as the clock
moves, and acknowledgement follows the close after a delay. A search only hashes the slots whose frames
can satisfy its time criteria, so long windows stay cheap.
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from osipi_connector.piwebapi import webid
from osipi_connector.piwebapi.pitime import TICKS_PER_SECOND, UTC, datetime_to_ticks, parse_iso, ticks_to_datetime
from osipi_connector.simulator import rng
from osipi_connector.simulator.af import (
    EF_ATTRIBUTE_BIT,
    EQUIPMENT,
    FANOUT,
    PEOPLE,
    TEMPLATES,
    UNIT,
    AttributeRef,
    AttrSpec,
    Template,
    point_attribute,
    template_chain,
)
from osipi_connector.simulator.http import ApiError
from osipi_connector.simulator.points import HISTORY_START

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

SEVERITIES = ("None", "Information", "Warning", "Minor", "Major", "Critical")
OPEN_END = "9999-12-31T23:59:59Z"
OPEN_TICKS = datetime_to_ticks(parse_iso(OPEN_END))
NOT_ACKNOWLEDGED = "1970-01-01T00:00:00Z"
DAY = 86400 * TICKS_PER_SECOND
WINDOW_MODES = ("None", "Overlapped", "Inclusive", "StartInclusive", "EndInclusive", "InProgress")
DIRECTION_MODES = (
    "BackwardFromStartTime", "ForwardFromStartTime", "BackwardFromEndTime", "ForwardFromEndTime",
    "BackwardInProgress", "ForwardInProgress",
)  # fmt: skip
SEARCH_MODES = WINDOW_MODES + DIRECTION_MODES
PRODUCTS = ("Polymer A-200", "Polymer B-310", "Solvent S-12", "Resin R-7", "Additive X-4", "Base Oil 150N")
REASONS = ("Mechanical failure", "Electrical trip", "Instrument fault", "Upstream starvation", "Blocked outlet")
NUMERIC_TYPES = ("Float32", "Float64", "Int32")
_NAME = re.compile(r"(?P<kind>\w+)-(?P<date>\d{8})-(?P<seq>\d{4})")


@dataclass(frozen=True)
class FrameKind:
    template: str
    share: float
    min_s: int
    max_s: int
    severities: tuple[str, ...]

    @property
    def can_be_acknowledged(self) -> bool:
        return next(t for t in TEMPLATES if t.name == self.template).can_be_acknowledged


KINDS = (
    FrameKind("Batch", 0.45, 3600, 8 * 3600, ("None",)),
    FrameKind("Downtime", 0.2, 600, 4 * 3600, ("Warning", "Minor", "Major")),
    FrameKind("Alarm", 0.35, 60, 90 * 60, ("Information", "Warning", "Minor", "Major", "Critical")),
)
MAX_DURATION = max(k.max_s for k in KINDS) * TICKS_PER_SECOND
_SHARES = np.cumsum([k.share for k in KINDS])
_LOG_MIN = np.log([k.min_s for k in KINDS])
_LOG_MAX = np.log([k.max_s for k in KINDS])
_SEVERITY_TABLE = np.array([[SEVERITIES.index(k.severities[i % len(k.severities)]) for i in range(5)] for k in KINDS])
_SEVERITY_COUNTS = np.array([len(k.severities) for k in KINDS])
_CAN_ACK = np.array([k.can_be_acknowledged for k in KINDS])


@dataclass
class Frames:
    """A run of slots' frames as arrays (element indices are within the Equipment level)."""

    slot: np.ndarray
    start: np.ndarray  # ticks
    duration: np.ndarray  # ticks
    kind: np.ndarray  # KINDS index
    severity: np.ndarray  # SEVERITIES index
    equipment: np.ndarray  # primary referenced element
    refs: np.ndarray  # how many elements are referenced: equipment, its unit, a sibling
    sibling: np.ndarray  # -1 when the unit has no other equipment
    ack_delay: np.ndarray  # ticks from close to acknowledgement; -1: never acknowledged

    def take(self, mask: np.ndarray) -> Frames:
        return Frames(*(getattr(self, f.name)[mask] for f in fields(self)))

    def end(self, now: int) -> np.ndarray:
        """End times as of `now`; open frames end at OPEN_TICKS."""
        end = self.start + self.duration
        return np.where(end > now, OPEN_TICKS, end)

    def acknowledged(self, now: int) -> np.ndarray:
        end = self.start + self.duration
        return _CAN_ACK[self.kind] & (end <= now) & (self.ack_delay >= 0) & (end + self.ack_delay <= now)


@dataclass(frozen=True)
class Frame:
    slot: int
    name: str
    kind: FrameKind
    start: int
    end: int  # OPEN_TICKS while in progress
    severity: str
    refs: tuple[int, ...]  # referenced elements (global AF indices), primary first
    acknowledged: int | None  # ticks
    annotated: bool
    locked: bool

    @property
    def open(self) -> bool:
        return self.end == OPEN_TICKS


@dataclass
class FrameQuery:
    """A parsed event-frame search; None means "no filter"."""

    mode: str = "Overlapped"
    start: int = 0
    end: int = 0
    name: Callable[[str], bool] | None = None
    referenced_name: Callable[[str], bool] | None = None
    referenced_template: str | None = None
    template: str | None = None
    category: str | None = None
    severities: tuple[int, ...] | None = None
    can_be_acknowledged: bool | None = None
    is_acknowledged: bool | None = None
    element: int | None = None  # frames referencing this element
    full_hierarchy: bool = False  # ... or any of its descendants
    sort_field: str = "Name"
    descending: bool = False


class EventFrameModel:
    def __init__(self, sim: Simulator):
        self.sim = sim
        self.af = sim.af
        self.seed = sim.config.seed
        self.per_day = max(0, sim.config.event_frames_per_day)
        self.slot_ticks = DAY // self.per_day if self.per_day else DAY

    # --- slots ---------------------------------------------------------------------------------------
    def slot_start(self, k: np.ndarray | int) -> np.ndarray | int:
        return HISTORY_START + (k // self.per_day) * DAY + (k % self.per_day) * self.slot_ticks

    def slot_of(self, t: int) -> int:
        day, within = divmod(t - HISTORY_START, DAY)
        return day * self.per_day + min(within // self.slot_ticks, self.per_day - 1)

    def slots(self, first_start: int, last_start: int) -> range:
        """Slots whose frame can start within [first_start, last_start]."""
        if not self.per_day or last_start < HISTORY_START or last_start < first_start:
            return range(0)
        return range(self.slot_of(max(first_start, HISTORY_START)), self.slot_of(last_start) + 1)

    def frames(self, slots: range) -> Frames:
        k = np.arange(slots.start, slots.stop, dtype=np.int64)
        h = rng.hash_keys(self.seed, 501, k)

        def u(salt: int) -> np.ndarray:
            return rng.uniform(h, salt)

        start = self.slot_start(k) + (u(1) * (self.slot_ticks // TICKS_PER_SECOND)).astype(np.int64) * TICKS_PER_SECOND
        kind = np.minimum(np.searchsorted(_SHARES, u(2) * _SHARES[-1], side="right"), len(KINDS) - 1)
        seconds = np.exp(_LOG_MIN[kind] + (_LOG_MAX[kind] - _LOG_MIN[kind]) * u(3))
        severity = _SEVERITY_TABLE[kind, (u(4) * _SEVERITY_COUNTS[kind]).astype(np.int64)]
        n_eq = self.af.counts[EQUIPMENT]
        equipment = (u(5) * n_eq).astype(np.int64)
        first = equipment // FANOUT[2] * FANOUT[2]
        size = np.minimum(first + FANOUT[2], n_eq) - first
        offset = 1 + (u(7) * np.maximum(size - 1, 0)).astype(np.int64)
        sibling = np.where(size > 1, first + (equipment - first + offset) % np.maximum(size, 1), -1)
        refs = 1 + (u(6) * 3).astype(np.int64)
        refs = np.where(sibling < 0, np.minimum(refs, 2), refs)
        delay = (300 + u(9) * 12 * 3600).astype(np.int64) * TICKS_PER_SECOND
        return Frames(
            slot=k,
            start=start,
            duration=np.round(seconds).astype(np.int64) * TICKS_PER_SECOND,
            kind=kind,
            severity=severity,
            equipment=equipment,
            refs=refs,
            sibling=sibling,
            ack_delay=np.where(u(8) < 0.15, -1, delay),
        )

    # --- names and single frames ---------------------------------------------------------------------
    @staticmethod
    @functools.lru_cache(maxsize=4096)
    def _day_label(day: int) -> str:
        return ticks_to_datetime(HISTORY_START + day * DAY).strftime("%Y%m%d")

    def name(self, slot: int, kind: int) -> str:
        day, seq = divmod(slot, self.per_day)
        return f"{KINDS[kind].template}-{self._day_label(day)}-{seq + 1:04d}"

    def names(self, f: Frames) -> list[str]:
        return [self.name(k, c) for k, c in zip(f.slot.tolist(), f.kind.tolist())]

    def referenced(self, f: Frames) -> list[tuple[np.ndarray, np.ndarray]]:
        """(global element index, valid) per reference position: equipment, its unit, a sibling."""
        af = self.af
        unit = af.offsets[UNIT] + f.equipment // FANOUT[2]
        return [
            (af.offsets[EQUIPMENT] + f.equipment, np.ones(len(f.slot), dtype=bool)),
            (unit, f.refs >= 2),
            (af.offsets[EQUIPMENT] + np.maximum(f.sibling, 0), f.refs >= 3),
        ]

    def frame(self, slot: int, now: int) -> Frame | None:
        """The frame in `slot` as of `now`, or None when it does not exist (yet)."""
        if not self.per_day or slot < 0 or self.slot_start(slot) > now:
            return None
        f = self.frames(range(slot, slot + 1))
        start, end = int(f.start[0]), int(f.end(now)[0])
        if start > now:
            return None
        kind = int(f.kind[0])
        refs = tuple(int(x[0]) for x, ok in self.referenced(f) if ok[0])
        closed = end != OPEN_TICKS
        acked = bool(f.acknowledged(now)[0])
        return Frame(
            slot=slot,
            name=self.name(slot, kind),
            kind=KINDS[kind],
            start=start,
            end=end,
            severity=SEVERITIES[int(f.severity[0])],
            refs=refs,
            acknowledged=end + int(f.ack_delay[0]) if acked else None,
            annotated=closed and rng.u(self.seed, 503, slot) < 0.1,
            locked=closed and KINDS[kind].template == "Batch" and now >= end + DAY,
        )

    def guid(self, slot: int) -> uuid.UUID:
        return self.sim.ids.guid("eventframe", slot)

    def path(self, frame: Frame) -> str:
        return f"{self.af.database_path}\\EventFrames[{frame.name}]"

    def webid(self, frame: Frame) -> str:
        return self.sim.ids.encode("Fm", (self.guid(frame.slot),), path=self.path(frame)[2:])

    def resolve(self, text: str) -> Frame:
        """The frame a WebID names (Full, IDOnly or PathOnly); 400/404 in PI's words otherwise."""
        now = self.sim.now_ticks()
        if text[:4] == "P1Fm":
            try:
                frame = self.find("\\\\" + (webid.decode(text).path or ""))
            except webid.WebIdError:
                raise ApiError(400, f"Unknown or invalid WebID format: '{text}'.") from None
        else:
            frame = self.frame(self.sim.ids.resolve(text, "Fm", "eventframe"), now)
        if frame is None:
            raise ApiError(404, f"The specified event frame was not found. WebID: '{text}'.")
        return frame

    def find(self, path: str) -> Frame | None:
        """The frame at `\\\\server\\database\\EventFrames[NAME]`, case-insensitive."""
        prefix = f"{self.af.database_path}\\EventFrames[".upper()
        if not path.upper().startswith(prefix) or not path.endswith("]") or not self.per_day:
            return None
        match = _NAME.fullmatch(path[len(prefix) : -1])
        if match is None or not 1 <= int(match["seq"]) <= self.per_day:
            return None
        try:
            day = datetime.strptime(match["date"], "%Y%m%d").replace(tzinfo=UTC)
        except ValueError:
            return None
        slot = (datetime_to_ticks(day) - HISTORY_START) // DAY * self.per_day + int(match["seq"]) - 1
        frame = self.frame(slot, self.sim.now_ticks())
        return frame if frame is not None and frame.name.upper() == match.group(0).upper() else None

    # --- attributes ----------------------------------------------------------------------------------
    def attributes(self, frame: Frame) -> tuple[AttrSpec, ...]:
        def u(salt: int) -> float:
            return rng.u(self.seed, 502, frame.slot, salt)

        t = frame.kind.template

        def static(name: str, type_: str, description: str, value: object, units: str = "") -> AttrSpec:
            return AttrSpec(name, type_, description, value, units, categories=("Event Data",), template=t)

        points = self.af.owned_points(frame.refs[0])
        operator = static("Operator", "String", "Operator on shift", f"PLANT\\{PEOPLE[int(u(1) * len(PEOPLE))]}")
        primary = point_attribute(self.sim, points[0], "Primary Value", t)
        if t == "Batch":
            batch_id = "B" + frame.name.split("-", 1)[1].replace("-", "")
            return (
                static("BatchID", "String", "Batch identifier", batch_id),
                static("Product", "String", "Product made", PRODUCTS[int(u(2) * len(PRODUCTS))]),
                operator,
                static("Batch Size", "Double", "Quantity made", round(5 + 45 * u(3), 2), "m3"),
                primary,
            )
        if t == "Downtime":
            return (
                static("Reason", "String", "Cause of the stop", REASONS[int(u(4) * len(REASONS))]),
                operator,
                static("Lost Production", "Double", "Production lost", round(40 * u(5), 2), "t"),
                primary,
            )
        numeric = [i for i in points if self.sim.points.point(i).point_type in NUMERIC_TYPES] or list(points)
        index = numeric[int(u(6) * len(numeric))]
        point = self.sim.points.point(index)
        return (
            static("Priority", "Int32", "Alarm priority (1 = highest)", 1 + int(u(8) * 4)),
            static(
                "Limit",
                "Double",
                "Limit that was crossed",
                round(point.mid + point.amplitude * (0.5 + u(7)), 3),
                point.units,
            ),
            operator,
            point_attribute(self.sim, index, "Trigger Value", t),
        )

    def attribute(self, frame: Frame, n: int) -> AttributeRef:
        spec = self.attributes(frame)[n]
        guid = self.sim.ids.guid("attribute", EF_ATTRIBUTE_BIT | frame.slot << 4 | n)
        path = f"{self.path(frame)}|{spec.name}"
        web_id = self.sim.ids.encode("AbF", (self.guid(frame.slot), guid), path=path[2:])
        owner = f"/eventframes/{self.webid(frame)}"
        return AttributeRef(web_id, guid, spec, path, "EventFrame", owner, (frame.kind.template,))

    def resolve_attribute(self, text: str) -> AttributeRef:
        ids = self.sim.ids
        slot = ids.resolve(text, "AbF", "eventframe")
        a = ids.resolve(text, "AbF", "attribute", position=1)
        frame = self.frame(slot, self.sim.now_ticks())
        n = a & 0xF
        if frame is None or a & EF_ATTRIBUTE_BIT == 0 or (a & ~EF_ATTRIBUTE_BIT) >> 4 != slot:
            raise ApiError(404, f"The specified attribute was not found. WebID: '{text}'.")
        if n >= len(self.attributes(frame)):
            raise ApiError(404, f"The specified attribute was not found. WebID: '{text}'.")
        return self.attribute(frame, n)

    def find_attribute(self, owner_path: str, name: str) -> AttributeRef | None:
        frame = self.find(owner_path)
        if frame is None:
            return None
        specs = self.attributes(frame)
        n = next((n for n, s in enumerate(specs) if s.name.upper() == name.upper()), None)
        return None if n is None else self.attribute(frame, n)

    # --- search --------------------------------------------------------------------------------------
    def search(self, q: FrameQuery, now: int) -> list[int]:
        """Slots of the frames matching `q` as of `now`, in the order PI would return them."""
        lo, hi = sorted((q.start, q.end))
        t = q.start
        first, last = {
            "None": (HISTORY_START, now),
            "StartInclusive": (lo, hi),
            "InProgress": (lo, hi),
            "Inclusive": (lo, hi),
            "EndInclusive": (min(lo, now) - MAX_DURATION, hi),
            "Overlapped": (min(lo, now) - MAX_DURATION, hi),
            "ForwardFromStartTime": (t, now),
            "ForwardInProgress": (t, now),
            "ForwardFromEndTime": (min(t, now) - MAX_DURATION, now),
        }.get(q.mode, (HISTORY_START, t))
        f = self.frames(self.slots(first, min(last, now)))
        f = f.take(f.start <= now)
        f = f.take(self._time_mask(q.mode, f, now, lo, hi, t))
        f = f.take(self._filter_mask(q, f, now))
        names = self.names(f) if q.name or (q.sort_field == "Name" and q.mode in WINDOW_MODES) else None
        if q.name and names is not None:
            keep = np.array([q.name(n) for n in names], dtype=bool)
            f, names = f.take(keep), [n for n, ok in zip(names, keep) if ok]
        return self._order(q, f, names, now)

    @staticmethod
    def _time_mask(mode: str, f: Frames, now: int, lo: int, hi: int, t: int) -> np.ndarray:
        s, e = f.start, f.end(now)
        in_progress = e == OPEN_TICKS
        tests: dict[str, Callable[[], np.ndarray]] = {
            "None": lambda: np.ones(len(s), dtype=bool),
            "StartInclusive": lambda: (s >= lo) & (s <= hi),
            "EndInclusive": lambda: (e >= lo) & (e <= hi),
            "Inclusive": lambda: (s >= lo) & (e <= hi),
            "Overlapped": lambda: (s <= hi) & (e >= lo),
            "InProgress": lambda: (s >= lo) & (s <= hi) & in_progress,
            "BackwardFromStartTime": lambda: s <= t,
            "ForwardFromStartTime": lambda: s >= t,
            "BackwardFromEndTime": lambda: e <= t,
            "ForwardFromEndTime": lambda: e > t,
            "BackwardInProgress": lambda: in_progress & (s <= t),
            "ForwardInProgress": lambda: in_progress & (s >= t),
        }
        return tests[mode]()

    def _filter_mask(self, q: FrameQuery, f: Frames, now: int) -> np.ndarray:
        mask = np.ones(len(f.slot), dtype=bool)
        if q.template is not None:
            mask &= np.isin(f.kind, [i for i, k in enumerate(KINDS) if k.template.upper() == q.template.upper()])
        if q.category is not None:
            wanted = q.category.upper()
            kinds = [i for i, k in enumerate(KINDS) if wanted in {c.upper() for c in _template(k).categories}]
            mask &= np.isin(f.kind, kinds)
        if q.severities is not None:
            mask &= np.isin(f.severity, q.severities)
        if q.can_be_acknowledged is not None:
            mask &= _CAN_ACK[f.kind] == q.can_be_acknowledged
        if q.is_acknowledged is not None:
            mask &= f.acknowledged(now) == q.is_acknowledged
        if q.element is not None or q.referenced_name or q.referenced_template:
            mask &= self._reference_mask(q, f)
        return mask

    def _reference_mask(self, q: FrameQuery, f: Frames) -> np.ndarray:
        """Frames with a referenced element that passes every element criterion of `q`."""
        af = self.af
        ranges = self._element_ranges(q.element, q.full_hierarchy) if q.element is not None else None
        mask = np.zeros(len(f.slot), dtype=bool)
        for x, valid in self.referenced(f):
            hit = valid.copy()
            if ranges is not None:
                hit &= np.logical_or.reduce([(x >= a) & (x < b) for a, b in ranges])
            if q.referenced_template:
                wanted = q.referenced_template.upper()
                codes = [i for i, t in enumerate(TEMPLATES) if wanted in {c.upper() for c in template_chain(t.name)}]
                hit &= np.isin(af.template_codes[x], codes)
            if q.referenced_name:
                unique = np.unique(x[hit])
                passing = [e for e in unique.tolist() if q.referenced_name(af.name(e))]
                hit &= np.isin(x, passing)
            mask |= hit
        return mask

    def _element_ranges(self, x: int, full_hierarchy: bool) -> list[tuple[int, int]]:
        """Global index ranges of `x` (and with `full_hierarchy` its descendants, one range a level)."""
        if not full_hierarchy:
            return [(x, x + 1)]
        af = self.af
        level, _ = af.locate(x)
        spans = [(lv, af.span(x, lv)) for lv in range(level, 5)]
        return [(af.element(lv, r.start), af.element(lv, r.start) + len(r)) for lv, r in spans if len(r)]

    def _order(self, q: FrameQuery, f: Frames, names: list[str] | None, now: int) -> list[int]:
        slots = f.slot.tolist()
        if q.mode in DIRECTION_MODES:
            key = f.start if "Start" in q.mode or "InProgress" in q.mode else f.end(now)
            order = np.lexsort((f.slot, key))
            return [slots[i] for i in (order[::-1] if q.mode.startswith("Backward") else order)]
        if q.sort_field == "Name" and names is not None:
            ranked = [k for _, k in sorted(zip(names, slots))]
        else:
            key = f.start if q.sort_field == "StartTime" else f.end(now)
            ranked = [slots[i] for i in np.lexsort((f.slot, key))]
        return ranked[::-1] if q.descending else ranked


def _template(kind: FrameKind) -> Template:
    return next(t for t in TEMPLATES if t.name == kind.template)
