"""Values at arbitrary instants (interpolated reads, boundaryType=Interpolated, summaries), vectorised.

One implementation serves every caller, so `/interpolated`, `/recorded?boundaryType=Interpolated` and
time-weighted summaries always agree. Float points are linear between neighbouring good events; Int32,
Digital and String points, and any value next to a system state, hold the previous value (step).
Before a point's first event the answer is the `No Data` system state.
"""

from __future__ import annotations

import numpy as np

from osipi_connector.simulator.points import Point
from osipi_connector.simulator.values import STATE_NO_DATA, Events, ValueModel, empty_events

STEP_TYPES = ("Digital", "String", "Int32")


def surrounding(model: ValueModel, point: Point, lo: int, hi: int, now: int) -> Events:
    """Every event in [lo, hi] plus the last one before lo and the first one after hi, ascending."""
    return Events.concat(
        [
            model.before(point, lo, now, inclusive=False),
            model.window(point, lo, hi, now, None),
            model.after(point, hi, now),
        ]
    )


def interpolate(model: ValueModel, point: Point, times: np.ndarray, now: int) -> Events:
    """The value at each of `times` (int64 ticks, any order), one event per time."""
    times = np.asarray(times, dtype=np.int64)
    if not len(times):
        return empty_events()
    around = surrounding(model, point, int(times.min()), int(times.max()), now)
    return interpolate_in(around, point, times)


def interpolate_in(around: Events, point: Point, times: np.ndarray) -> Events:
    """`interpolate` from events already fetched (ascending, covering the times and their neighbours)."""
    n = len(around)
    if n == 0:
        return _no_data(times)
    before = np.searchsorted(around.ticks, times, side="right") - 1  # newest event at or before t
    found = before >= 0
    i = np.clip(before, 0, n - 1)
    result = around.take(i)
    result.ticks = times.copy()
    result.value = result.value.copy()
    if point.point_type not in STEP_TYPES:
        j = np.minimum(i + 1, n - 1)
        linear = found & (around.ticks[i] != times) & (i + 1 < n) & (around.system[i] == 0) & (around.system[j] == 0)
        if linear.any():
            t0, t1 = around.ticks[i[linear]], around.ticks[j[linear]]
            v0, v1 = around.value[i[linear]], around.value[j[linear]]
            raw = v0 + (v1 - v0) * (times[linear] - t0) / (t1 - t0)
            result.value[linear] = [round(v, 6) for v in raw.tolist()]
    if not found.all():
        missing = ~found
        result.system = result.system.copy()
        result.system[missing] = STATE_NO_DATA
        for flag in ("questionable", "substituted", "annotated"):
            column = getattr(result, flag).copy()
            column[missing] = False
            setattr(result, flag, column)
    return result


def _no_data(times: np.ndarray) -> Events:
    n = len(times)
    return Events(
        times.copy(),
        np.zeros(n),
        np.full(n, STATE_NO_DATA, np.int8),
        np.zeros(n, bool),
        np.zeros(n, bool),
        np.zeros(n, bool),
    )
