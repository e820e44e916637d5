"""The byte-matrix encoder (`jsonrows`) writes exactly the bytes of the per-value encoder it replaced.

The reference is `jsonfast._encode_timestamp_value_first` (one bytes object per timestamp, value and
tail, joined), which still serves answers under `ROWS_MIN` values; it is itself checked against one
dict per value in test_jsonfast.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from osipi_connector.piwebapi.pitime import TICKS_PER_SECOND, parse_pi_timestamp_ticks
from osipi_connector.simulator import jsonfast, jsonrows
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.core import Simulator
from osipi_connector.simulator.values import STATE_IO_TIMEOUT, Events, ValueModel
from tests.simulator.test_jsonfast import obvious

SIM = Simulator(SimConfig(seed=11, tags=400, edit_share=0.2))
MODEL = ValueModel(SIM.config)
NOW = parse_pi_timestamp_ticks("2025-03-01T12:00:00Z")
DAY = 86_400 * TICKS_PER_SECOND
LAYOUTS = {
    "all": jsonfast.TIMED_VALUE_FIELDS,
    "connector": jsonfast.selected_item_fields(
        "Items.Timestamp;Items.Value;Items.Good;Items.Questionable;Items.Substituted;Items.Annotated"
    ),
    "timestamp-value": ("Timestamp", "Value"),
}


def reference(point, events: Events, fields) -> bytes:
    """The per-value encoder, whatever the size."""
    return jsonfast._encode_timestamp_value_first(point, events, fields, jsonfast.flag_combos(events).tolist())


def new(point, events: Events, fields) -> bytes:
    """The matrix encoder (which the server uses for `ROWS_MIN` numbers or more), on its own."""
    return jsonrows.encode_rows(point, events, fields, jsonfast.flag_combos(events), True) + b"]"


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_tag_and_window_matches_the_per_value_encoder(layout):
    """200 tags (every numeric type, whole and sub-second, late and edited data) × three windows:
    from Pt Created on, the last day, and a day read backwards."""
    fields = LAYOUTS[layout]
    types, compared = set(), 0
    for index in range(0, SIM.config.tags, 2):
        point = SIM.points.point(index + len(fields) % 2)
        for start, end in ((point.created_ticks, NOW), (NOW - DAY, NOW), (NOW, NOW - DAY)):
            events = MODEL.window(point, start, end, NOW, 3_000)
            if len(events) < jsonfast.ROWS_MIN or point.point_type not in jsonfast.NUMERIC_TYPES:
                continue
            assert new(point, events, fields) == reference(point, events, fields), (point.name, start, end)
            types.add((point.point_type, point.subsecond))
            compared += len(events)
    assert {t for t, _ in types} == set(jsonfast.NUMERIC_TYPES)  # Digital, String: per value
    assert {s for _, s in types} == {False, True}
    assert compared > 500_000


def crafted(point, values: list[float], ticks: np.ndarray | None = None) -> Events:
    n = len(values)
    rng = np.random.default_rng(n)
    flags = rng.random((3, n)) < 0.2
    system = np.where(rng.random(n) < 0.05, STATE_IO_TIMEOUT, 0).astype(np.int8)
    if ticks is None:
        ticks = NOW - np.arange(n)[::-1] * 7 * TICKS_PER_SECOND
    return Events(np.asarray(ticks, dtype=np.int64), np.array(values, dtype=np.float64), system, *flags)


def numeric_point(point_type: str):
    return next(p for p in map(SIM.points.point, range(SIM.config.tags)) if p.point_type == point_type)


@pytest.mark.parametrize("point_type", ["Float32", "Float64", "Int32"])
def test_numbers_at_the_edges_of_the_fast_path(point_type):
    """Signs, -0.0, whole numbers, every fraction length, 8-digit integers, and numbers orjson writes
    with an exponent or with more digits (which must go through orjson)."""
    point = numeric_point(point_type)
    rng = np.random.default_rng(7)
    edges = [0.0, -0.0, 1.0, -1.0, 12.0, 0.5, -0.5, 0.001, -0.001, 0.000999, 0.0001, 1e-6, 5e-6, 1e-7]
    edges += [99_999_999.0, 99_999_999.999999, 1e8, -1e8, 123_456_789.5, 1e16, 1.5e300, 0.1 + 0.2, 1 / 3]
    edges += [float("nan"), float("inf"), -float("inf"), 10_000.0, 9_999.0, 10_000.001, 100_000_000.25]
    decimals = {"Float32": 3, "Float64": 6, "Int32": 0}[point_type]
    if not decimals:  # an Int32 value is a whole finite number
        edges = [e for e in edges if np.isfinite(e) and abs(e) < 2**62]
    scale = rng.choice([1e-3, 1.0, 1e3, 1e5, 1e7], 3000)
    noise = rng.normal(0, 1, 3000) * scale
    values = np.round(noise, decimals) if decimals else np.floor(noise)
    events = crafted(point, edges + values.tolist())
    assert new(point, events, LAYOUTS["all"]) == reference(point, events, LAYOUTS["all"])
    finite = events.take(np.isfinite(events.value))  # orjson writes NaN as null, the dicts cannot hold it
    assert new(point, finite, LAYOUTS["all"]) == obvious(point, finite)


def test_timestamps_fractions_days_and_eras():
    """Sub-second ticks with 0..7 fraction digits, runs over midnight and year ends, before 1970."""
    point = numeric_point("Float64")
    rng = np.random.default_rng(3)
    starts = [0, -DAY * 400, parse_pi_timestamp_ticks("2024-12-31T23:59:00Z"), NOW]
    steps = rng.choice([1, 10, 1_000, 1_234_567, TICKS_PER_SECOND, 3_600 * TICKS_PER_SECOND], 4000)
    for start in starts:
        ticks = start + np.cumsum(steps)
        events = crafted(point, np.round(rng.normal(50, 30, len(ticks)), 6).tolist(), ticks)
        assert new(point, events, LAYOUTS["all"]) == reference(point, events, LAYOUTS["all"])
        assert new(point, events, LAYOUTS["all"]) == obvious(point, events)


def test_pieces_join_into_the_same_array():
    """Answers streamed in parts and chunks (the first piece opens the array) equal one encoding."""
    point = numeric_point("Float32")
    parts = list(MODEL.iter_window(point, NOW - 3 * DAY, NOW, NOW, None, 5_000))
    whole = Events.concat(parts)
    expected = reference(point, whole, LAYOUTS["all"])
    assert b"".join(jsonfast.encode_parts(point, parts, chunk=1_000)) == expected
    assert b"".join(jsonfast.encode_items_chunked(point, whole, chunk=777)) == expected
    assert b"".join(jsonfast.encode_parts(point, [], chunk=1_000)) == b"[]"
    small = whole.take(slice(0, 70))  # chunks below ROWS_MIN go through the per-value path
    assert b"".join(jsonfast.encode_parts(point, [small], chunk=30)) == reference(point, small, LAYOUTS["all"])
