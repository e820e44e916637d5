"""The points every PI Data Archive is installed with exist besides the generated plant.

The list (SINUSOID, SINUSOIDU, CDT158, CDM158, CDEP158, BA:TEMP.1, BA:LEVEL.1, BA:CONC.1, BA:ACTIVE.1,
BA:PHASE.1) is the one the PI Data Archive installer creates for its Random and Ramp Soak simulator
interfaces ("Random interface point configuration",
https://docs.aveva.com/bundle/overview-of-pi-interfaces/page/1010148.html: sinusoid data with
Location2 cycles per day, SINUSOID being the 12-hour wave; "Ramp Soak interface point configuration",
https://docs.aveva.com/bundle/overview-of-pi-interfaces/page/1010147.html: batch active and phase
tags). Point types as a real server reports them (tagreader's own tests against PI use BA:CONC.1 as
Float32, BA:ACTIVE.1 as Digital and CDEP158 as Int32).
"""

from __future__ import annotations

import pytest

from tests.simulator.helpers import get_json

EXPECTED = {
    "SINUSOID": ("Float32", ""),
    "SINUSOIDU": ("Float32", ""),
    "CDT158": ("Float32", ""),
    "CDM158": ("Digital", "Modes"),
    "CDEP158": ("Int32", ""),
    "BA:TEMP.1": ("Float32", ""),
    "BA:LEVEL.1": ("Float32", ""),
    "BA:CONC.1": ("Float32", ""),
    "BA:ACTIVE.1": ("Digital", "BatchAct"),
    "BA:PHASE.1": ("Digital", "Phases"),
}


def point(http, simulator, name: str) -> dict:
    return get_json(http, f"{simulator.url}/points", path=f"\\\\PISIM\\{name.lower()}")  # case-insensitive


@pytest.mark.parametrize(("name", "expected"), EXPECTED.items())
def test_default_point_exists_with_its_type_and_digital_set(simulator, http, name, expected):
    found = point(http, simulator, name)
    assert (found["Name"], found["PointType"], found["DigitalSetName"]) == (name, *expected)
    values = get_json(http, found["Links"]["RecordedData"], startTime="*-1d", endTime="*")["Items"]
    assert values
    if expected[0] == "Digital":
        states = get_json(http, f"{simulator.url}/enumerationsets",
                          path=f"\\\\PIServers[PISIM]\\EnumerationSets[{expected[1]}]")  # fmt: skip
        names = {v["Name"] for v in get_json(http, states["Links"]["Values"])["Items"]}
        assert {v["Value"]["Name"] for v in values if v["Good"]} <= names


def test_sinusoid_is_the_12_hour_sine_wave_between_0_and_100(simulator, http):
    sinusoid = point(http, simulator, "SINUSOID")
    assert sinusoid["Descriptor"] == "12 Hour Sine Wave"
    assert (sinusoid["Zero"], sinusoid["Span"]) == (0.0, 100.0)
    times = ["2025-02-28T15:00:00Z", "2025-03-01T03:00:00Z", "2025-03-01T09:00:00Z"]
    values = get_json(http, f"{simulator.url}/streams/{sinusoid['WebId']}/interpolatedattimes", time=times)["Items"]
    peak, peak_again, trough = (v["Value"] for v in values)
    assert 95 < peak <= 100
    assert 95 < peak_again <= 100
    assert 0 <= trough < 5


def test_sinusoidu_is_not_compressed(simulator, http):
    attributes = get_json(http, point(http, simulator, "SINUSOIDU")["Links"]["Attributes"], name="compressing")
    assert attributes["Items"][0]["Value"] == 0


def test_default_points_are_found_by_point_search(simulator, http):
    server = get_json(http, f"{simulator.url}/dataservers")["Items"][0]
    found = get_json(http, f"{simulator.url}/points/search", dataServerWebId=server["WebId"], query="name:BA\\:*")
    assert sorted(p["Name"] for p in found["Items"]) == sorted(n for n in EXPECTED if n.startswith("BA:"))
    listed = get_json(http, server["Links"]["Points"], nameFilter="CD*")["Items"]
    assert sorted(p["Name"] for p in listed) == ["CDEP158", "CDM158", "CDT158"]
