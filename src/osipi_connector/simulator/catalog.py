"""The AF objects around the hierarchy that the simulated PI System has a few of: analysis templates and the
analyses built from them on some elements, AF tables with their rows, analysis and table categories, and
the AF server's units-of-measure database (a handful of classes with their units).

Small and fixed, so tests can compare what a run stored with what the server serves; the routes are in
`controllers/catalog.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

from osipi_connector.simulator.af import MANUFACTURERS
from osipi_connector.simulator.eventframes import PRODUCTS


@dataclass(frozen=True)
class AnalysisTemplate:
    name: str
    description: str
    target: str  # the element template it applies to
    rule: str  # AnalysisRulePlugInName
    time_rule: str  # TimeRulePlugInName
    categories: tuple[str, ...]
    output_time: str = ""


ANALYSIS_TEMPLATES = (
    AnalysisTemplate("Pump Efficiency", "Hydraulic efficiency from flow and power", "Pump", "PerformanceEquation",
                     "Periodic", ("Efficiency",)),
    AnalysisTemplate("Compressor Power Rollup", "Hourly energy of the compressor", "Compressor",
                     "PerformanceEquation", "Periodic", ("Efficiency", "Rollup"), "*"),
    AnalysisTemplate("Tank Overfill", "Event frame while the level is above the high limit", "Tank", "EventFrame",
                     "Natural", ("Monitoring",)),
    AnalysisTemplate("Unit Throughput", "Sum of the equipment flows of a process unit", "ProcessUnit", "Rollup",
                     "Periodic", ("Rollup",)),
)  # fmt: skip
ANALYSES_PER_TEMPLATE = 2  # analyses built from each template, on the first elements of its target template
# an analysis without a template, on the first element of this template
FREE_ANALYSIS = ("Plant Throughput Check", "Enterprise", "PerformanceEquation", "Periodic", ("Monitoring",))
ANALYSIS_CATEGORIES = (
    ("Efficiency", "Energy and efficiency calculations"),
    ("Monitoring", "Limit and condition monitoring"),
    ("Rollup", "Totals and sums over children"),
)
TABLE_CATEGORIES = (("Reference Data", "Lookup data maintained by engineering"), ("Operations", "Shift data"))


@dataclass(frozen=True)
class AFTable:
    name: str
    description: str
    categories: tuple[str, ...]
    columns: tuple[tuple[str, str], ...]  # (name, .NET type name) as TableData's Columns has them
    rows: tuple[tuple[object, ...], ...]
    time_zone: str = "UTC"


AF_TABLES = (
    AFTable(
        "Product Specifications",
        "Density and limits of each product",
        ("Reference Data",),
        (
            ("Product", "String"),
            ("Density", "Double"),
            ("MaxTemperature", "Double"),
            ("Grade", "Int32"),
            ("Active", "Boolean"),
        ),
        tuple((p, round(780 + 37.5 * i, 1), 60.0 + 5 * i, 1 + i % 3, i % 4 != 3) for i, p in enumerate(PRODUCTS)),
    ),
    AFTable(
        "Shift Schedule",
        "The three shifts of every site",
        ("Operations",),
        (("Shift", "String"), ("Start", "String"), ("End", "String"), ("Crew", "Int32")),
        (("Morning", "06:00", "14:00", 12), ("Afternoon", "14:00", "22:00", 10), ("Night", "22:00", "06:00", 7)),
    ),
    AFTable(
        "Equipment Vendors",
        "Support contacts of the equipment manufacturers",
        ("Reference Data",),
        (("Manufacturer", "String"), ("SupportLevel", "String"), ("ContractYears", "Int32")),
        tuple((m, ("Gold", "Silver", "Bronze")[i % 3], 1 + i % 5) for i, m in enumerate(MANUFACTURERS)),
    ),
)


@dataclass(frozen=True)
class Unit:
    name: str
    abbreviation: str
    factor: float  # canonical value = value * factor + offset
    offset: float = 0.0


@dataclass(frozen=True)
class UnitClass:
    name: str
    description: str
    units: tuple[Unit, ...]


UNIT_CLASSES = (
    UnitClass("Temperature", "Temperature Unit Class", (
        Unit("kelvin", "K", 1.0), Unit("degree Celsius", "°C", 1.0, 273.15),
        Unit("degree Fahrenheit", "°F", 5 / 9, 255.37222222222223), Unit("degree Rankine", "°R", 5 / 9),
    )),
    UnitClass("Pressure", "Pressure Unit Class", (
        Unit("pascal", "Pa", 1.0), Unit("kilopascal", "kPa", 1000.0), Unit("bar", "bar", 100000.0),
        Unit("pound-force per square inch", "psi", 6894.757293168361), Unit("atmosphere", "atm", 101325.0),
    )),
    UnitClass("Volume Flow Rate", "Volume Flow Rate Unit Class", (
        Unit("cubic meter per second", "m3/s", 1.0), Unit("cubic meter per hour", "m3/h", 1 / 3600),
        Unit("liter per minute", "L/min", 1 / 60000), Unit("US gallon per minute", "gal/min", 6.30901964e-05),
    )),
    UnitClass("Power", "Power Unit Class", (
        Unit("watt", "W", 1.0), Unit("kilowatt", "kW", 1000.0), Unit("megawatt", "MW", 1e6),
        Unit("horsepower", "hp", 745.6998715822702),
    )),
    UnitClass("Volume", "Volume Unit Class", (
        Unit("cubic meter", "m3", 1.0), Unit("liter", "L", 0.001), Unit("US gallon", "gal", 0.003785411784),
        Unit("barrel", "bbl", 0.158987294928),
    )),
    UnitClass("Length", "Length Unit Class", (
        Unit("meter", "m", 1.0), Unit("millimeter", "mm", 0.001), Unit("inch", "in", 0.0254),
        Unit("foot", "ft", 0.3048),
    )),
    UnitClass("Ratio", "Ratio Unit Class", (
        Unit("percent", "%", 0.01), Unit("parts per million", "ppm", 1e-6), Unit("fraction", "frac", 1.0),
    )),
)  # fmt: skip
UNIT_STRIDE = 64  # unit GUID index: class * UNIT_STRIDE + unit number


def canonical(unit_class: UnitClass) -> Unit:
    """The unit whose factor is 1 and offset 0: every other unit converts to it."""
    return next(u for u in unit_class.units if u.factor == 1.0 and u.offset == 0.0)
