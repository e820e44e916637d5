"""The data server's PI points, generated lazily from (seed, index).

Point `i` (0-based) has point id `i + 1`. Every property is a pure function of the seed and `i`, so
100,000 points cost nothing until asked for. Equipment element `e` in AF owns points
`e * attributes_per_equipment ...`: the AF model and this catalogue agree by construction.

After the generated plant come the points every PI Data Archive is installed with (SINUSOID,
SINUSOIDU, CDT158, CDM158, CDEP158 and the ramp-soak batch points BA:*), with their point types and
digital sets, so PI's documentation examples and third-party clients' READMEs work unchanged.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from osipi_connector.piwebapi import webid
from osipi_connector.piwebapi.pitime import TICKS_PER_SECOND, datetime_to_ticks, format_ticks, parse_iso
from osipi_connector.simulator import rng
from osipi_connector.simulator.ids import IdFactory

# Tag history begins at a per-tag moment in this range (fixed, so answers never depend on the wall clock).
HISTORY_START = datetime_to_ticks(parse_iso("2024-01-01T00:00:00Z"))
HISTORY_SPREAD_S = 180 * 86400
INTERVALS_S = (1, 1, 2, 5, 5, 10, 10, 30, 60, 60, 120, 300, 600)


@dataclass(frozen=True)
class DigitalSet:
    name: str
    states: tuple[str, ...]


DIGITAL_SETS = {
    "Valve State": DigitalSet("Valve State", ("Closed", "Open", "Travel", "Fault")),
    "Motor State": DigitalSet("Motor State", ("Stopped", "Running", "Tripped")),
    # the default digital sets of a PI Data Archive that its default points use
    "Modes": DigitalSet("Modes", ("MANUAL", "AUTO", "CASCADE", "PROGRAM", "PROG-AUTO")),
    "BatchAct": DigitalSet("BatchAct", ("Inactive", "Active")),
    "Phases": DigitalSet("Phases", ("Phase1", "Phase2", "Phase3", "Phase4")),
}
# PI's "SYSTEM" digital state set: the states the simulator emits as bad values.
SYSTEM_STATES = {"Shutdown": 254, "Pt Created": 253, "I/O Timeout": 246, "No Data": 248}


@dataclass(frozen=True)
class PointKind:
    prefix: str
    point_type: str  # Float32, Float64, Int32, Digital, String
    units: str
    descriptor: str
    zero: float
    span: float
    digital_set: str = ""
    event_rate: float = 0.85  # share of sampling slots with an event (exception reporting)


KINDS = (
    PointKind("TI", "Float32", "°C", "Temperature", 0.0, 200.0),
    PointKind("PI", "Float32", "bar", "Pressure", 0.0, 25.0),
    PointKind("FI", "Float32", "m3/h", "Flow", 0.0, 500.0),
    PointKind("LI", "Float32", "%", "Level", 0.0, 100.0),
    PointKind("JI", "Float64", "kW", "Power", 0.0, 5000.0),
    PointKind("AI", "Float64", "pH", "Analyser", 0.0, 14.0),
    PointKind("CNT", "Int32", "count", "Production counter", 0.0, 100000.0),
    PointKind("XV", "Digital", "", "Valve position", 0.0, 4.0, "Valve State", 0.15),
    PointKind("MTR", "Digital", "", "Motor status", 0.0, 3.0, "Motor State", 0.1),
    PointKind("BATCH", "String", "", "Batch identifier", 0.0, 0.0, event_rate=0.05),
)


@dataclass(frozen=True)
class DefaultPoint:
    """One of the points the PI Data Archive installer creates (Random and Ramp Soak interfaces)."""

    name: str
    kind: PointKind
    point_source: str  # R = Random simulator interface, 9 = Ramp Soak simulator interface
    interval_s: int
    mid: float
    amplitude: float
    period_s: float
    compressing: int = 1


DEFAULT_POINTS = (
    # amplitude 48.5: with the model's noise (±2.5 % of it) the wave stays within zero..zero+span
    DefaultPoint("SINUSOID", PointKind("", "Float32", "", "12 Hour Sine Wave", 0.0, 100.0), "R", 60, 50, 48.5,
                 43_200),
    DefaultPoint("SINUSOIDU", PointKind("", "Float32", "", "12 Hour Sine Wave", 0.0, 100.0), "R", 60, 50, 48.5,
                 43_200, compressing=0),
    DefaultPoint("CDT158", PointKind("", "Float32", "DEG. C", "Atmospheric Tower OH Vapor", 0.0, 200.0), "R", 60,
                 120, 40, 14_400),
    DefaultPoint("CDM158", PointKind("", "Digital", "", "Light Naphtha End Point Control", 0.0, 5.0, "Modes", 0.2),
                 "R", 300, 0, 0, 0),
    DefaultPoint("CDEP158", PointKind("", "Int32", "", "Light Naphtha End Point", 0.0, 100.0), "R", 120, 40, 30,
                 21_600),
    DefaultPoint("BA:TEMP.1", PointKind("", "Float32", "DEG. C", "Batch Reactor Temperature", 0.0, 150.0), "9", 60,
                 75, 50, 7_200),
    DefaultPoint("BA:LEVEL.1", PointKind("", "Float32", "%", "Batch Reactor Level", 0.0, 100.0), "9", 60, 50, 40,
                 7_200),
    DefaultPoint("BA:CONC.1", PointKind("", "Float32", "g/l", "Batch Reactor Concentration", 0.0, 100.0), "9", 60,
                 40, 30, 7_200),
    DefaultPoint("BA:ACTIVE.1", PointKind("", "Digital", "", "Batch Active", 0.0, 2.0, "BatchAct", 0.8), "9", 900,
                 0, 0, 0),
    DefaultPoint("BA:PHASE.1", PointKind("", "Digital", "", "Batch Phase", 0.0, 4.0, "Phases", 0.8), "9", 600,
                 0, 0, 0),
)  # fmt: skip

_FIRST_SALT = 11  # rng salts of a plant point's properties: kind 11, interval 12 ... phase 19

# Weights: mostly analog, as in a real plant historian.
_KIND_TABLE = [0] * 14 + [1] * 10 + [2] * 10 + [3] * 6 + [4] * 8 + [5] * 4 + [6] * 6 + [7] * 6 + [8] * 4 + [9] * 4


@dataclass(frozen=True)
class Point:
    index: int
    id: int
    name: str
    kind: PointKind
    interval_ticks: int
    created_ticks: int  # a "Pt Created" event sits here; no data before it
    subsecond: bool  # timestamps with 100-ns fractions (else whole seconds)
    late: bool  # values arrive after a delay (written into the past)
    mid: float
    amplitude: float
    period_s: float
    phase: float

    @property
    def point_type(self) -> str:
        return self.kind.point_type

    @property
    def units(self) -> str:
        return self.kind.units

    @property
    def digital_set(self) -> DigitalSet | None:
        return DIGITAL_SETS.get(self.kind.digital_set)


class PointCatalog:
    def __init__(self, seed: int, count: int, server_name: str, ids: IdFactory, late_share: float):
        self.seed = seed
        self.count = count
        self.server_name = server_name
        self.ids = ids
        self.late_share = late_share
        self.server_guid = ids.guid("dataserver", 0)
        self.total = count + len(DEFAULT_POINTS)  # the plant, then PI's default points
        self.point = functools.lru_cache(maxsize=200_000)(self._point)
        # every sub-request of the connector's batches names its point by WebID: decoded once each
        self.index_of = functools.lru_cache(maxsize=200_000)(self._index_of)

    # --- identity ------------------------------------------------------------------------------------
    @property
    def server_webid(self) -> str:
        return self.ids.encode("DS", path=self.server_name)

    def webid(self, index: int) -> str:
        point = self.point(index)
        return self.ids.encode("DP", (), (point.id,), path=f"{self.server_name}\\{point.name}")

    def path(self, index: int) -> str:
        return f"\\\\{self.server_name}\\{self.point(index).name}"

    def _index_of(self, text: str) -> int | None:
        """The point a WebID names (IDOnly, Full or PathOnly), or None."""
        try:
            parsed = webid.decode(text)
        except webid.WebIdError:
            return None
        if parsed.marker != "DP":
            return None
        if parsed.kind == "P":
            server, _, tag = (parsed.path or "").partition("\\")
            return self.find_name(tag) if server == self.server_name.upper() else None
        if parsed.system not in (None, self.server_guid) or not parsed.ints:
            return None
        index = parsed.ints[0] - 1
        return index if 0 <= index < self.total else None

    # --- names ---------------------------------------------------------------------------------------
    @staticmethod
    def kind_of(seed: int, index: int) -> PointKind:
        return KINDS[_KIND_TABLE[int(rng.u(seed, 11, index) * len(_KIND_TABLE))]]

    def default_point(self, index: int) -> DefaultPoint | None:
        """The PI default point at `index`, or None for a point of the generated plant."""
        return DEFAULT_POINTS[index - self.count] if index >= self.count else None

    def name(self, index: int) -> str:
        default = self.default_point(index)
        if default is not None:
            return default.name
        return f"{self._kind(index).prefix}{index + 1:06d}.PV"

    def _kind(self, index: int) -> PointKind:
        """`kind_of(seed, index)` from the drawn table."""
        return KINDS[_KIND_TABLE[int(self._u(11, index) * len(_KIND_TABLE))]]

    def _u(self, salt: int, index: int) -> float:
        """`rng.u(seed, salt, index)` of a plant point, from the drawn table."""
        return float(self._draws[salt - _FIRST_SALT, index])

    @functools.cached_property
    def _draws(self) -> np.ndarray:
        """The plant points' random properties (salts 11..19), drawn for all of them at once: making each
        point's object with scalar hashes cost more than listing it (a run lists every point)."""
        index = np.arange(self.count, dtype=np.int64)
        return np.stack([rng.uniform(rng.hash_keys(self.seed, salt, index)) for salt in range(_FIRST_SALT, 20)])

    @functools.cached_property
    def _upper_names(self) -> dict[str, int]:
        return {self.name(i).upper(): i for i in range(self.total)}

    def find_name(self, name: str) -> int | None:
        return self._upper_names.get(name.upper())

    def search(self, name_filter: str | None) -> list[int]:
        """Indices whose name matches a PI nameFilter (`*` and `?` wildcards, case-insensitive)."""
        if not name_filter or name_filter == "*":
            return list(range(self.total))
        regex = re.compile(fnmatch.translate(name_filter.upper()))
        return [i for name, i in self._upper_names.items() if regex.match(name)]

    # --- properties ----------------------------------------------------------------------------------
    def _point(self, index: int) -> Point:
        if not 0 <= index < self.total:
            raise IndexError(index)
        default = self.default_point(index)
        if default is not None:  # history from HISTORY_START (a midnight), so SINUSOID peaks at 03:00/15:00
            return Point(
                index=index,
                id=index + 1,
                name=default.name,
                kind=default.kind,
                interval_ticks=default.interval_s * TICKS_PER_SECOND,
                created_ticks=HISTORY_START,
                subsecond=False,
                late=False,
                mid=default.mid,
                amplitude=default.amplitude,
                period_s=default.period_s or 86_400,
                phase=0.0,
            )
        kind = self._kind(index)
        interval = INTERVALS_S[int(self._u(12, index) * len(INTERVALS_S))]
        if kind.point_type in ("Digital", "String"):
            interval = max(interval, 60)
        created = HISTORY_START + int(self._u(13, index) * HISTORY_SPREAD_S) * TICKS_PER_SECOND
        return Point(
            index=index,
            id=index + 1,
            name=self.name(index),
            kind=kind,
            interval_ticks=interval * TICKS_PER_SECOND,
            created_ticks=created,
            subsecond=self._u(14, index) < 0.3,
            late=self._u(15, index) < self.late_share,
            mid=kind.zero + kind.span * (0.3 + 0.4 * self._u(16, index)),
            amplitude=kind.span * (0.05 + 0.2 * self._u(17, index)),
            period_s=600 + 86400 * self._u(18, index),
            phase=6.283185307179586 * self._u(19, index),
        )

    def descriptor(self, index: int) -> str:
        point = self.point(index)
        if self.default_point(index) is not None:
            return point.kind.descriptor
        return f"{point.kind.descriptor} {point.name.split('.')[0]}"

    def to_json(self, index: int, link: Callable[[str], str]) -> dict:
        """PI Web API's point object (`GET /points/{webId}`)."""
        point = self.point(index)
        web_id = self.webid(index)
        return {
            "WebId": web_id,
            "Id": point.id,
            "Name": point.name,
            "Path": self.path(index),
            "Descriptor": self.descriptor(index),
            "PointClass": "classic",
            "PointType": point.point_type,
            "DigitalSetName": point.kind.digital_set,
            "EngineeringUnits": point.units,
            "Span": point.kind.span,
            "Zero": point.kind.zero,
            "Step": point.point_type in ("Digital", "String", "Int32"),
            "Future": False,
            "DisplayDigits": -5,
            "Links": {
                "Self": link(f"/points/{web_id}"),
                "DataServer": link(f"/dataservers/{self.server_webid}"),
                "Attributes": link(f"/points/{web_id}/attributes"),
                "InterpolatedData": link(f"/streams/{web_id}/interpolated"),
                "RecordedData": link(f"/streams/{web_id}/recorded"),
                "PlotData": link(f"/streams/{web_id}/plot"),
                "SummaryData": link(f"/streams/{web_id}/summary"),
                "Value": link(f"/streams/{web_id}/value"),
                "EndValue": link(f"/streams/{web_id}/end"),
            },
        }

    def attributes(self, index: int) -> dict[str, object]:
        """The PI point attribute table (`GET /points/{webId}/attributes`): every attribute of PI's
        classic point class, lower-case names as in PI."""
        point = self.point(index)
        kind = point.kind
        created = format_ticks(point.created_ticks)
        default = self.default_point(index)
        return {
            "tag": point.name,
            "descriptor": self.descriptor(index),
            "exdesc": "",
            "pointtype": point.point_type,
            "pointsource": default.point_source if default else "SIM",
            "ptclassname": "classic",
            "ptclassid": 3,
            "ptclassrev": 1,
            "engunits": point.units,
            "digitalset": kind.digital_set,
            "zero": kind.zero,
            "span": kind.span,
            "typicalvalue": round(point.mid, 3),
            "displaydigits": -5,
            "step": 1 if point.point_type in ("Digital", "String", "Int32") else 0,
            "future": 0,
            "archiving": 1,
            "compressing": default.compressing if default else 1,
            "compdev": round(kind.span * 0.005, 6),
            "compdevpercent": 0.5,
            "compmax": 28800,
            "compmin": 0,
            "excdev": round(kind.span * 0.0025, 6),
            "excdevpercent": 0.25,
            "excmax": 600,
            "excmin": 0,
            "scan": 1,
            "shutdown": 1,
            "location1": 1,
            "location2": 0,
            "location3": 0,
            "location4": point.interval_ticks // TICKS_PER_SECOND,
            "location5": 0,
            "instrumenttag": "",
            "sourcetag": "",
            "userint1": 0,
            "userint2": 0,
            "userreal1": 0.0,
            "userreal2": 0.0,
            "convers": 1.0,
            "filtercode": 0,
            "squareroot": 0,
            "totalcode": 0,
            "srcptid": 0,
            "pointid": point.id,
            "recno": point.id,
            "creationdate": created,
            "creator": "piadmin",
            "changedate": created,
            "changer": "piadmin",
            "ptsecurity": "piadmins: A(r,w) | PIWorld: A(r)",
            "datasecurity": "piadmins: A(r,w) | PIWorld: A(r)",
            "ptowner": "piadmin",
            "ptgroup": "piadmins",
            "ptaccess": "o:rw g:rw w:r",
            "dataowner": "piadmin",
            "datagroup": "piadmins",
            "dataaccess": "o:rw g:rw w:r",
        }
