"""Recorded windows made together for a /batch (`recordedwindow.prefill`) are byte for byte the windows made
one by one: every point type, windows before a point's history, past `now`, cut by maxCount, empty."""

from __future__ import annotations

import random
from datetime import datetime, timezone

import pytest

from osipi_connector.piwebapi.pitime import TICKS_PER_SECOND, datetime_to_ticks
from osipi_connector.simulator import jsonfast
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.core import Simulator
from osipi_connector.simulator.recordedwindow import STREAM_CHUNK_SLOTS, RecordedWindow, prefill
from osipi_connector.simulator.values import ValueModel

NOW = datetime(2025, 3, 1, 13, tzinfo=timezone.utc)
FIELD_CHOICES = [
    jsonfast.TIMED_VALUE_FIELDS,
    ("Timestamp", "Value", "Good", "Questionable", "Substituted", "Annotated"),
    ("Timestamp", "Value"),
    ("Value", "Timestamp"),  # not a jsonrows layout: made point by point inside prefill
]


def _windows(model: ValueModel, sim: Simulator, seed: int, fields: tuple[str, ...]) -> list[RecordedWindow]:
    draw = random.Random(seed)
    now = datetime_to_ticks(NOW)
    hour = 3600 * TICKS_PER_SECOND
    out = []
    for index in range(sim.config.tags):
        point = sim.points.point(index)
        start = now - int(draw.uniform(0.01, 30) * hour) + draw.randrange(10_000_000)
        end = start + int(draw.uniform(0, 3) * hour) if draw.random() < 0.9 else now + hour  # some past now
        if draw.random() < 0.05:
            start, end = point.created_ticks - hour, point.created_ticks + hour  # the history's start
        limit = draw.choice([1, 3, 64, 1000, 150_000])
        out.append(RecordedWindow(model, point, start, end, now, limit, fields))
    return out


@pytest.mark.parametrize("fields", FIELD_CHOICES, ids="-".join)
@pytest.mark.parametrize("delete_share", [0.0, 0.05, 0.6])
def test_windows_made_together_are_the_windows_made_one_by_one(fields: tuple[str, ...], delete_share: float) -> None:
    config = SimConfig(
        seed=11,
        tags=150,
        now=NOW,
        late_delay_s=(60.0, 5400.0),
        edit_delay_s=600.0,
        delete_share=delete_share,
        delete_delay_s=1800.0,
    )
    sim = Simulator(config)
    model = ValueModel(config)
    together = _windows(model, sim, 5, fields)
    alone = _windows(model, sim, 5, fields)
    prefill(together)
    made = [w for w in together if w._made is not None]
    spans = [w.slot_range() for w in together]
    eligible = sum(1 for s in spans if s is not None and s[1] - s[0] <= STREAM_CHUNK_SLOTS)
    assert len(made) > 50  # the shared path is what is compared
    # most deleted: windows cut to the slots that should hold maxCount values fall short, made on their own
    assert (len(made) < eligible) == (delete_share > 0.5)
    for a, b in zip(together, alone):
        assert b"".join(a.pieces()) == b"".join(b.pieces()), a.point.name
    assert all(w._made is None for w in together)  # handed out once, not kept with the batch's answers


def test_a_window_read_twice_is_made_again() -> None:
    config = SimConfig(seed=3, tags=5, now=NOW)
    sim = Simulator(config)
    model = ValueModel(config)
    now = datetime_to_ticks(NOW)
    window = RecordedWindow(
        model, sim.points.point(0), now - 7200 * TICKS_PER_SECOND, now, now, 1000, ("Timestamp", "Value")
    )
    prefill([window])
    first = b"".join(window.pieces())
    assert first == b"".join(window.pieces())
    assert first.count(b'"Timestamp"') > 0
