"""The vectorised encoder is byte-identical to encoding one dict per value the obvious way."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from osipi_connector.piwebapi.pitime import format_ticks, parse_pi_timestamp_ticks
from osipi_connector.simulator import jsonfast
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.core import Simulator
from osipi_connector.simulator.points import SYSTEM_STATES
from osipi_connector.simulator.values import SYSTEM_NAMES, Events, ValueModel

SIM = Simulator(SimConfig(seed=3, tags=300, edit_share=0.2))
MODEL = ValueModel(SIM.config)
NOW = parse_pi_timestamp_ticks("2025-03-01T00:00:00Z")


def obvious(point, events: Events, fields=jsonfast.TIMED_VALUE_FIELDS) -> bytes:
    items = []
    for i in range(len(events)):
        if events.system[i]:
            name = SYSTEM_NAMES[events.system[i] - 1]
            value = {"Name": name, "Value": SYSTEM_STATES[name], "IsSystem": True}
        elif point.point_type == "Digital":
            states = point.digital_set.states
            value = {"Name": states[int(events.value[i])], "Value": int(events.value[i]), "IsSystem": False}
        elif point.point_type == "String":
            value = jsonfast.string_value(point, int(events.value[i]))
        elif point.point_type == "Int32":
            value = int(events.value[i])
        else:
            value = float(events.value[i])
        item = {
            "Timestamp": format_ticks(int(events.ticks[i])),
            "Value": value,
            "UnitsAbbreviation": point.units,
            "Good": bool(events.system[i] == 0),
            "Questionable": bool(events.questionable[i]),
            "Substituted": bool(events.substituted[i]),
            "Annotated": bool(events.annotated[i]),
        }
        items.append({k: v for k, v in item.items() if k in fields})
    return orjson.dumps(items)


def sample_points():
    """One point of each type, with and without sub-second timestamps where the catalog has them."""
    seen, chosen = set(), []
    for index in range(SIM.config.tags):
        point = SIM.points.point(index)
        key = (point.point_type, point.subsecond)
        if key not in seen:
            seen.add(key)
            chosen.append(point)
    return chosen


@pytest.mark.parametrize("point", sample_points(), ids=lambda p: f"{p.point_type}-{'sub' if p.subsecond else 'whole'}")
def test_encoder_matches_dicts(point):
    events = MODEL.window(point, point.created_ticks, NOW, NOW, 5_000)  # from Pt Created on
    assert len(events) > 1000
    assert events.system.any()  # Pt Created at least: system states go through the same path
    assert jsonfast.encode_items(point, events) == obvious(point, events)
    for size in (1, 2):
        assert jsonfast.encode_items(point, events.take(slice(0, size))) == obvious(point, events.take(slice(0, size)))
    backwards = events.take(slice(None, None, -1))
    assert b"".join(jsonfast.encode_items_chunked(point, backwards, chunk=777)) == obvious(point, backwards)
    fields = ("Value", "Timestamp", "Good")  # selectedFields keeps the canonical order
    slim = tuple(f for f in jsonfast.TIMED_VALUE_FIELDS if f in fields)
    assert jsonfast.encode_items(point, events, slim) == obvious(point, events, slim)


def test_timestamps_across_eras_and_fractions():
    rng = np.random.default_rng(5)
    ticks = np.concatenate(
        [
            rng.integers(0, 2_500_000_000_000_000_000, 2000),  # 1970 .. 9892, unsorted
            NOW + np.arange(0, 10_000_000, 1_234_567),  # fractions with 1..7 significant digits
            np.array([0, 253_402_300_799 * 10_000_000]),  # the epoch and 9999-12-31T23:59:59Z
        ]
    )
    for quoted in (False, True):
        expected = [(f'"{format_ticks(t)}"' if quoted else format_ticks(t)).encode() for t in ticks.tolist()]
        assert jsonfast.format_timestamps(ticks, quoted=quoted) == expected
