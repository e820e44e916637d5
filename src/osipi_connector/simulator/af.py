"""The Asset Framework model: one AF server, one database and a balanced element tree over the PI points.

Levels: Enterprise / Site / Area / ProcessUnit / Equipment. Equipment element `e` owns points
`e*A .. e*A+A-1` (A = `attributes_per_equipment`), one PI Point attribute each, so AF and the data
archive agree by construction. Nodes are numbered level by level, so a node's descendants on any level
form one contiguous range: parents, children, paths and subtree tests are arithmetic, nothing is stored,
and everything is a pure function of (seed, index).
"""

from __future__ import annotations

import functools
import math
import re
import uuid
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from osipi_connector.piwebapi import webid
from osipi_connector.simulator import rng
from osipi_connector.simulator.http import ApiError

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

ENTERPRISE, SITE, AREA, UNIT, EQUIPMENT = range(5)
FANOUT = (3, 4, 8)  # areas per site, units per area, equipment per unit
EF_ATTRIBUTE_BIT = 0x8000_0000  # event-frame attribute GUIDs: this bit | slot << 4 | attribute number


@dataclass(frozen=True)
class StreamSource:
    """What the streams controller needs to serve an AF attribute (AbE or AbF WebID)."""

    point_index: int | None  # PI Point attributes
    static_value: object  # static attributes (JSON-able)
    units: str
    name: str
    path: str


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    categories: tuple[str, ...]
    base: str = ""
    instance_type: str = "Element"
    prefix: str = ""  # equipment name prefix
    rating: tuple[str, str, float, float] = ("", "", 0.0, 0.0)  # nameplate rating: name, units, low, high
    severity: str = "None"
    can_be_acknowledged: bool = False
    naming_pattern: str = ""  # AF's name of new instances; the frames' names follow it (Batch-20250301-0001)


_EQ_CATS = ("Asset",)
_FRAME_NAMES = "%TEMPLATE%-%STARTTIME:yyyyMMdd%-%COUNTER:0000%"
TEMPLATES = (
    Template("Enterprise", "Top of the asset hierarchy", ("Organization",)),
    Template("Site", "A production site", ("Geography",)),
    Template("Area", "A plant area within a site", ("Operations",)),
    Template("ProcessUnit", "A process unit within an area", ("Operations",)),
    Template("Equipment", "Base template of all equipment", _EQ_CATS),
    Template("Pump", "Centrifugal pump", (*_EQ_CATS, "Rotating Equipment"), "Equipment", prefix="P",
             rating=("Rated Flow", "m3/h", 50, 800)),
    Template("Compressor", "Gas compressor", (*_EQ_CATS, "Rotating Equipment"), "Equipment", prefix="K",
             rating=("Rated Power", "kW", 200, 5000)),
    Template("HeatExchanger", "Shell-and-tube heat exchanger", (*_EQ_CATS, "Static Equipment"), "Equipment",
             prefix="E", rating=("Design Duty", "kW", 100, 3000)),
    Template("Tank", "Atmospheric storage tank", (*_EQ_CATS, "Static Equipment"), "Equipment", prefix="TK",
             rating=("Capacity", "m3", 50, 5000)),
    Template("Valve", "Control valve", (*_EQ_CATS, "Control"), "Equipment", prefix="CV",
             rating=("Nominal Size", "mm", 25, 600)),
    Template("Batch", "A production batch", ("Production",), instance_type="EventFrame",
             naming_pattern=_FRAME_NAMES),
    Template("Downtime", "Unplanned equipment downtime", ("Reliability",), instance_type="EventFrame",
             severity="Warning", can_be_acknowledged=True, naming_pattern=_FRAME_NAMES),
    Template("Alarm", "A process alarm", ("Process Safety",), instance_type="EventFrame", severity="Major",
             can_be_acknowledged=True, naming_pattern=_FRAME_NAMES),
)  # fmt: skip
TEMPLATE_INDEX = {t.name: i for i, t in enumerate(TEMPLATES)}
EQUIPMENT_TEMPLATES = ("Pump", "Pump", "Pump", "Compressor", "HeatExchanger", "HeatExchanger", "Tank", "Valve")
LEVEL_TEMPLATES = ("Enterprise", "Site", "Area", "ProcessUnit")
FIRST_ATTRIBUTE = ("Headquarters", "Site Code", "Area Code", "Unit Code")  # each level's default attribute
CATEGORIES = (
    ("Organization", "Company-level elements"),
    ("Geography", "Elements with a physical location"),
    ("Operations", "Operating areas and units"),
    ("Asset", "Maintainable equipment"),
    ("Rotating Equipment", "Pumps, compressors and other rotating machines"),
    ("Static Equipment", "Vessels, tanks and heat exchangers"),
    ("Control", "Control elements"),
    ("Critical", "Equipment whose failure stops production"),
    ("Production", "Production records"),
    ("Reliability", "Equipment reliability events"),
    ("Process Safety", "Process safety events"),
)
CATEGORY_INDEX = {name.upper(): i for i, (name, _) in enumerate(CATEGORIES)}
ATTRIBUTE_CATEGORIES = (  # the categories the attributes below carry
    ("Event Data", "Values an event frame captured"),
    ("Location", "Where an asset is"),
    ("Nameplate", "Fixed properties of the equipment"),
    ("Process Data", "Measurements from the PI Data Archive"),
)
ATTRIBUTE_CATEGORY_INDEX = {name.upper(): i for i, (name, _) in enumerate(ATTRIBUTE_CATEGORIES)}

SITES = (
    ("Houston", 29.76, -95.37), ("Rotterdam", 51.92, 4.48), ("Singapore", 1.29, 103.85),
    ("Antwerp", 51.22, 4.40), ("Jubail", 27.01, 49.66), ("Ulsan", 35.54, 129.31),
    ("Ludwigshafen", 49.48, 8.44), ("Baton Rouge", 30.45, -91.19), ("Jamnagar", 22.47, 70.06),
    ("Tarragona", 41.12, 1.25), ("Kawasaki", 35.53, 139.70), ("Sarnia", 42.97, -82.40),
)  # fmt: skip
AREAS = ("Processing", "Utilities", "Storage")
MANUFACTURERS = ("Flowserve", "Sulzer", "Atlas Copco", "Alfa Laval", "Emerson", "KSB", "Siemens", "Grundfos")
PEOPLE = ("jsmith", "mgarcia", "lchen", "akumar", "okowalski", "tnguyen", "sdubois", "rmuller")
AF_TYPES = {"Float32": "Single", "Float64": "Double", "Int32": "Int32", "Digital": "EnumerationValue"}


@dataclass(frozen=True)
class AttrSpec:
    """One attribute's definition; PI Point attributes carry `point_index`, static ones `value`."""

    name: str
    type: str
    description: str = ""
    value: object = None
    units: str = ""
    point_index: int | None = None
    type_qualifier: str = ""
    categories: tuple[str, ...] = ("Nameplate",)
    template: str = ""  # the template defining it; "" for attributes added on the element
    hidden: bool = False
    excluded: bool = False
    step: bool = False


@dataclass(frozen=True)
class AttributeRef:
    """A resolved attribute: its definition plus the owner it hangs off."""

    web_id: str
    guid: uuid.UUID
    spec: AttrSpec
    path: str
    owner_kind: str  # "Element" or "EventFrame"
    owner_link: str  # e.g. "/elements/{webId}"
    owner_templates: tuple[str, ...] = field(default=())  # the owner's template and its bases

    def source(self) -> StreamSource:
        s = self.spec
        return StreamSource(s.point_index, s.value, s.units, s.name, self.path)


def wildcard(pattern: str | None) -> Callable[[str], bool] | None:
    """PI's name filter (`*` any run, `?` one character, case-insensitive); None when it matches all."""
    if not pattern or pattern == "*":
        return None
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    regex = re.compile(body, re.IGNORECASE | re.DOTALL)
    return lambda text: regex.fullmatch(text) is not None


def template_chain(name: str) -> tuple[str, ...]:
    """A template and its base templates (a templateName filter matches derived templates too)."""
    chain = []
    while name:
        chain.append(name)
        name = TEMPLATES[TEMPLATE_INDEX[name]].base
    return tuple(chain)


def point_attribute(sim: Simulator, index: int, name: str, template: str = "") -> AttrSpec:
    """An attribute with a PI Point data reference to point `index`."""
    points = sim.points
    point = points.point(index)
    return AttrSpec(
        name=name,
        type=AF_TYPES.get(point.point_type, "String"),
        description=points.descriptor(index),
        units=point.units,
        point_index=index,
        type_qualifier=point.kind.digital_set,
        categories=("Process Data",),
        template=template,
        step=point.point_type in ("Digital", "String", "Int32"),
    )


class AssetModel:
    def __init__(self, sim: Simulator):
        c = sim.config
        self.sim = sim
        self.seed = c.seed
        self.server_name = c.af_server_name
        self.database_name = c.af_database_name
        self.per_equipment = max(1, c.attributes_per_equipment)
        equipment = math.ceil(sim.points.count / self.per_equipment)
        units = math.ceil(equipment / FANOUT[2])
        areas = math.ceil(units / FANOUT[1])
        sites = math.ceil(areas / FANOUT[0])
        self.counts = (1, sites, areas, units, equipment)
        self.fanouts = (sites, *FANOUT)
        self.offsets = tuple(sum(self.counts[:level]) for level in range(5))
        self.total = sum(self.counts)
        self.attr_stride = 1 << (self.per_equipment + 8).bit_length()
        self.server_guid = sim.ids.guid("assetserver", 0)
        self.database_guid = sim.ids.guid("database", 0)
        self.attributes = functools.lru_cache(maxsize=4096)(self._attributes)

    # --- server and database --------------------------------------------------------------------------
    @property
    def server_webid(self) -> str:
        return self.sim.ids.encode("RS", path=self.server_name)

    @property
    def database_webid(self) -> str:
        path = f"{self.server_name}\\{self.database_name}"
        return self.sim.ids.encode("RD", (self.database_guid,), path=path)

    @property
    def database_path(self) -> str:
        return f"\\\\{self.server_name}\\{self.database_name}"

    # --- tree arithmetic -----------------------------------------------------------------------------
    def locate(self, x: int) -> tuple[int, int]:
        """(level, index within the level) of element `x`."""
        level = bisect_right(self.offsets, x) - 1
        return level, x - self.offsets[level]

    def element(self, level: int, j: int) -> int:
        return self.offsets[level] + j

    def span(self, x: int, level: int) -> range:
        """The indices, within `level`, of `x` itself or its descendants there (empty above `x`)."""
        own, j = self.locate(x)
        if level < own:
            return range(0)
        lo, hi = j, j + 1
        for below in range(own, level):
            lo, hi = lo * self.fanouts[below], hi * self.fanouts[below]
        return range(lo, min(hi, self.counts[level]))

    def parent(self, x: int) -> int | None:
        level, j = self.locate(x)
        return None if level == ENTERPRISE else self.element(level - 1, j // self.fanouts[level - 1])

    def children(self, x: int) -> list[int]:
        level, _ = self.locate(x)
        if level == EQUIPMENT:
            return []
        return [self.element(level + 1, j) for j in self.span(x, level + 1)]

    def descendants(self, x: int) -> list[int]:
        level, _ = self.locate(x)
        return [self.element(lv, j) for lv in range(level + 1, 5) for j in self.span(x, lv)]

    def ancestors(self, x: int) -> list[int]:
        """`x` and its ancestors, root first."""
        chain = [x]
        while (p := self.parent(chain[-1])) is not None:
            chain.append(p)
        return chain[::-1]

    # --- element properties --------------------------------------------------------------------------
    @functools.cached_property
    def _equipment_templates(self) -> np.ndarray:
        draws = rng.uniform(rng.hash_keys(self.seed, 301, np.arange(self.counts[EQUIPMENT])))
        return (draws * len(EQUIPMENT_TEMPLATES)).astype(np.int64)

    @functools.cached_property
    def template_codes(self) -> np.ndarray:
        """TEMPLATES index of every element (vectorised, for searches over whole subtrees)."""
        fixed = [np.full(self.counts[lv], TEMPLATE_INDEX[name]) for lv, name in enumerate(LEVEL_TEMPLATES)]
        lookup = np.array([TEMPLATE_INDEX[name] for name in EQUIPMENT_TEMPLATES])
        return np.concatenate([*fixed, lookup[self._equipment_templates]])

    def template(self, x: int) -> Template:
        return TEMPLATES[int(self.template_codes[x])]

    @functools.cached_property
    def names(self) -> list[str]:
        return [self._name(x) for x in range(self.total)]

    def _name(self, x: int) -> str:
        level, j = self.locate(x)
        if level == ENTERPRISE:
            return "Enterprise"
        if level == SITE:
            return SITES[j % len(SITES)][0] + (f" {j // len(SITES) + 1}" if j >= len(SITES) else "")
        if level == AREA:
            return AREAS[j % FANOUT[0]]
        if level == UNIT:
            return f"Unit {j + 1:03d}"
        return f"{self.template(x).prefix}-{j + 1:04d}"

    def name(self, x: int) -> str:
        return self.names[x]

    def path(self, x: int) -> str:
        return "\\".join([self.database_path, *(self.names[a] for a in self.ancestors(x))])

    def description(self, x: int) -> str:
        level, _ = self.locate(x)
        name, parent = self.names[x], self.parent(x)
        if parent is None:
            return f"{name} of {self.database_name}"
        where = self.names[parent]
        return {
            SITE: f"Production site {name}",
            AREA: f"{name} area at {where}",
            UNIT: f"Process unit {name} in {where}",
        }.get(level, f"{self.template(x).description} {name} in {where}")

    @functools.cached_property
    def _critical(self) -> np.ndarray:
        return rng.uniform(rng.hash_keys(self.seed, 302, np.arange(self.counts[EQUIPMENT]))) < 0.2

    def is_critical(self, x: int) -> bool:
        level, j = self.locate(x)
        return level == EQUIPMENT and bool(self._critical[j])

    def categories(self, x: int) -> tuple[str, ...]:
        return self.template(x).categories + (("Critical",) if self.is_critical(x) else ())

    def guid(self, x: int) -> uuid.UUID:
        return self.sim.ids.guid("element", x)

    def webid(self, x: int) -> str:
        return self.sim.ids.encode("Em", (self.guid(x),), path=self.path(x)[2:])

    def owned_points(self, x: int) -> range:
        level, j = self.locate(x)
        if level != EQUIPMENT:
            return range(0)
        return range(j * self.per_equipment, min((j + 1) * self.per_equipment, self.sim.points.count))

    # --- lookups -------------------------------------------------------------------------------------
    def resolve(self, text: str) -> int:
        """The element a WebID names (Full, IDOnly or PathOnly); 400/404 in PI's words otherwise."""
        if text[:4] == "P1Em":
            x = self.find(_path_only(text))
        else:
            x = self.sim.ids.resolve(text, "Em", "element")
            x = x if x < self.total else None
        if x is None:
            raise ApiError(404, f"The specified element was not found. WebID: '{text}'.")
        return x

    def find(self, path: str) -> int | None:
        """The element at an AF path (`\\\\server\\database\\Enterprise\\...`), case-insensitive."""
        parts = path.lstrip("\\").split("\\")
        if len(parts) < 3 or parts[0].upper() != self.server_name.upper():
            return None
        if parts[1].upper() != self.database_name.upper() or parts[2].upper() != self.names[0].upper():
            return None
        x = 0
        for part in parts[3:]:
            wanted = part.upper()
            x = next((c for c in self.children(x) if self.names[c].upper() == wanted), -1)
            if x < 0:
                return None
        return x

    # --- attributes ----------------------------------------------------------------------------------
    def _attributes(self, x: int) -> tuple[AttrSpec, ...]:
        level, j = self.locate(x)
        tpl = self.template(x).name
        u = functools.partial(rng.u, self.seed, level, j)
        if level == EQUIPMENT:
            return (*self._point_attributes(x), *self._equipment_statics(x, j, u))
        if level == ENTERPRISE:
            return (
                AttrSpec(FIRST_ATTRIBUTE[ENTERPRISE], "String", "Head office city", SITES[0][0], template=tpl),
                AttrSpec("Reporting Currency", "String", "Currency of cost reports", "USD", template=tpl),
            )
        if level == SITE:
            city, lat, lon = SITES[j % len(SITES)]
            loc = ("Location",)
            return (
                AttrSpec(FIRST_ATTRIBUTE[SITE], "String", "Short site code", f"S{j + 1:03d}", template=tpl),
                AttrSpec("Location", "String", "City", city, categories=loc, template=tpl),
                AttrSpec("Latitude", "Double", "Latitude", round(lat + u(1) / 10, 4), "°", categories=loc, template=tpl),
                AttrSpec("Longitude", "Double", "Longitude", round(lon + u(2) / 10, 4), "°", categories=loc, template=tpl),
            )  # fmt: skip
        code = f"{self.names[x][:3].upper()}-{j + 1:03d}" if level == AREA else f"U{j + 1:04d}"
        extra = (
            AttrSpec("Supervisor", "String", "Area supervisor", f"PLANT\\{PEOPLE[int(u(3) * len(PEOPLE))]}", template=tpl)
            if level == AREA
            else AttrSpec("Design Throughput", "Double", "Design feed rate", round(100 + 900 * u(4), 1), "m3/h", template=tpl)
        )  # fmt: skip
        return (AttrSpec(FIRST_ATTRIBUTE[level], "String", "Short code", code, template=tpl), extra)

    def _point_attributes(self, x: int) -> list[AttrSpec]:
        seen: dict[str, int] = {}
        out = []
        for i in self.owned_points(x):
            base = self.sim.points.point(i).kind.descriptor
            seen[base] = seen.get(base, 0) + 1
            out.append(point_attribute(self.sim, i, base if seen[base] == 1 else f"{base} {seen[base]}"))
        return out

    def _equipment_statics(self, x: int, j: int, u: Callable[..., float]) -> list[AttrSpec]:
        tpl = self.template(x)
        rating, units, lo, hi = tpl.rating
        maker = MANUFACTURERS[int(u(5) * len(MANUFACTURERS))]
        return [
            AttrSpec("Manufacturer", "String", "Equipment maker", maker, template="Equipment"),
            AttrSpec("Model", "String", "Model number", f"{maker[:2].upper()}-{int(100 + 900 * u(6))}", template="Equipment"),
            AttrSpec(rating, "Double", "Nameplate rating", round(lo + (hi - lo) * u(7), 1), units, template=tpl.name),
            AttrSpec("Asset ID", "String", "Maintenance system id", f"EQ{j + 1:07d}", template="Equipment", hidden=True),
            AttrSpec("Legacy Tag", "String", "Tag in the retired DCS", f"OLD-{j + 1:05d}", template="Equipment", excluded=True),
        ]  # fmt: skip

    def attribute_guid(self, x: int, n: int) -> uuid.UUID:
        return self.sim.ids.guid("attribute", x * self.attr_stride + n)

    def attribute_webid(self, x: int, n: int, name: str) -> str:
        return self.sim.ids.encode("AbE", (self.guid(x), self.attribute_guid(x, n)), path=f"{self.path(x)[2:]}|{name}")

    def default_attribute_webid(self, x: int) -> str:
        """Attribute 0 (the first PI Point attribute of equipment), named without building the others."""
        level, _ = self.locate(x)
        if level != EQUIPMENT:
            return self.attribute_webid(x, 0, FIRST_ATTRIBUTE[level])
        first = self.owned_points(x)[0]
        return self.attribute_webid(x, 0, self.sim.points.kind_of(self.seed, first).descriptor)

    def attribute(self, x: int, n: int) -> AttributeRef:
        spec = self.attributes(x)[n]
        path = f"{self.path(x)}|{spec.name}"
        guid = self.attribute_guid(x, n)
        web_id = self.attribute_webid(x, n, spec.name)
        owner = f"/elements/{self.webid(x)}"
        return AttributeRef(web_id, guid, spec, path, "Element", owner, template_chain(self.template(x).name))

    def resolve_attribute(self, text: str) -> AttributeRef:
        """An element or event-frame attribute from its WebID; 400/404 in PI's words otherwise."""
        if text[:5] in ("P1AbE", "P1AbF"):
            ref = self.find_attribute(_path_only(text))
            if ref is None:
                raise ApiError(404, f"The specified attribute was not found. WebID: '{text}'.")
            return ref
        marker = text[2:5]
        if marker == "AbF":
            return self.sim.event_frames.resolve_attribute(text)
        ids = self.sim.ids
        x = ids.resolve(text, "AbE", "element")
        a = ids.resolve(text, "AbE", "attribute", position=1)
        x_of, n = divmod(a, self.attr_stride)
        if x >= self.total or x_of != x or n >= len(self.attributes(x)):
            raise ApiError(404, f"The specified attribute was not found. WebID: '{text}'.")
        return self.attribute(x, n)

    def find_attribute(self, path: str) -> AttributeRef | None:
        owner, sep, name = path.partition("|")
        if not sep:
            return None
        if "\\EventFrames[" in owner:
            return self.sim.event_frames.find_attribute(owner, name)
        x = self.find(owner)
        if x is None:
            return None
        n = next((n for n, s in enumerate(self.attributes(x)) if s.name.upper() == name.upper()), None)
        return None if n is None else self.attribute(x, n)

    def stream_source(self, web_id: str) -> StreamSource | None:
        """The data behind an attribute WebID (AbE or AbF), or None if it names none of ours."""
        try:
            return self.resolve_attribute(web_id).source()
        except (ApiError, webid.WebIdError, ValueError, IndexError):
            return None

    # --- templates and categories --------------------------------------------------------------------
    def template_webid(self, t: int) -> str:
        path = f"{self.server_name}\\{self.database_name}\\ElementTemplates[{TEMPLATES[t].name}]"
        return self.sim.ids.encode("ET", (self.sim.ids.guid("template", t),), path=path)

    def category_webid(self, c: int) -> str:
        path = f"{self.server_name}\\{self.database_name}\\CategoriesElement[{CATEGORIES[c][0]}]"
        return self.sim.ids.encode("EC", (self.sim.ids.guid("category", c),), path=path)


def _path_only(text: str) -> str:
    """The object path a PathOnly WebID carries, with its leading `\\\\` restored; 400 when it does not decode."""
    try:
        return "\\\\" + (webid.decode(text).path or "")
    except webid.WebIdError:
        raise ApiError(400, f"Unknown or invalid WebID format: '{text}'.") from None
