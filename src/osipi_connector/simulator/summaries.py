"""Summary statistics over one interval, event-weighted or time-weighted, as AF computes them.

* EventWeighted: every good event in the interval counts once; StdDev is the sample deviation,
  PopulationStdDev the population one.
* TimeWeighted (the server's default): the signal between events is the interpolated one (linear for
  Float points, steps otherwise, and a step before a bad value), including the interpolated values at
  both interval ends; a bad value makes the time until the next event bad. Average is the integral
  over the good time, Total the average times the whole interval in days (PI's per-day rate; bad
  periods count at the average, as documented), PercentGood the good share of the time,
  Minimum/Maximum cover the boundary values too.
* Count is the number of events (good or bad) in either basis.
Intervals are [start, end); the last interval of a request also takes an event exactly at its end.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from osipi_connector.piwebapi.pitime import TICKS_PER_SECOND
from osipi_connector.simulator.interpolation import STEP_TYPES, interpolate_in
from osipi_connector.simulator.points import Point
from osipi_connector.simulator.values import Events

SUMMARY_TYPES = (
    "Total",
    "Average",
    "Minimum",
    "Maximum",
    "Range",
    "StdDev",
    "PopulationStdDev",
    "Count",
    "PercentGood",
)
NON_NUMERIC_TYPES = ("Count",)  # "Count is the only summary type supported on non-numeric streams"
UNITLESS_TYPES = ("Count", "PercentGood")
TICKS_PER_DAY = 86_400 * TICKS_PER_SECOND


@dataclass
class Result:
    value: float | int | None  # None: no good data in the interval
    at: int  # ticks of the extreme value (Minimum/Maximum), else of the interval start


def event_weighted(events: Events, kind: str, start: int) -> Result:
    """`events`: the interval's events in time order."""
    good = events.system == 0
    if kind == "Count":
        return Result(len(events), start)
    if kind == "PercentGood":
        return Result(100.0 * float(good.mean()) if len(events) else 0.0, start)
    values, ticks = events.value[good], events.ticks[good]
    if not len(values):
        return Result(None, start)
    if kind in ("Minimum", "Maximum"):
        i = int(values.argmin() if kind == "Minimum" else values.argmax())
        return Result(float(values[i]), int(ticks[i]))
    if kind in ("StdDev", "PopulationStdDev"):
        ddof = 1 if kind == "StdDev" else 0
        return Result(float(values.std(ddof=ddof)) if len(values) > ddof else None, start)
    mean = float(values.mean())
    value = {
        "Average": mean,
        "Total": mean * len(values),
        "Range": float(values.max() - values.min()),
    }[kind]
    return Result(value, start)


def time_weighted(around: Events, inside: Events, point: Point, kind: str, start: int, end: int) -> Result:
    """`around`: events around the interval (see interpolation.surrounding); `inside`: the interval's
    events, which count for Count."""
    if kind == "Count":
        return Result(len(inside), start)
    edges = interpolate_in(around, point, np.array([start, end], dtype=np.int64))
    strict = inside.take((inside.ticks > start) & (inside.ticks < end))
    ticks = np.concatenate([edges.ticks[:1], strict.ticks, edges.ticks[1:]])
    values = np.concatenate([edges.value[:1], strict.value, edges.value[1:]])
    good = np.concatenate([edges.system[:1], strict.system, edges.system[1:]]) == 0
    dt = np.diff(ticks).astype(np.float64) / TICKS_PER_SECOND
    left, right = values[:-1], values[1:]
    segment_good = good[:-1]
    linear = segment_good & good[1:] & (point.point_type not in STEP_TYPES)
    right = np.where(linear, right, left)  # a step holds the left value
    good_time = float(dt[segment_good].sum())
    total_time = (end - start) / TICKS_PER_SECOND
    if kind == "PercentGood":
        return Result(100.0 * good_time / total_time if total_time > 0 else 0.0, start)
    if kind in ("Minimum", "Maximum"):
        if not good.any():
            return Result(None, start)
        masked = np.where(good, values, np.inf if kind == "Minimum" else -np.inf)
        i = int(masked.argmin() if kind == "Minimum" else masked.argmax())
        return Result(float(values[i]), int(ticks[i]))
    if kind == "Range":
        if not good.any():
            return Result(None, start)
        return Result(float(values[good].max() - values[good].min()), start)
    if good_time <= 0:
        return Result(None, start)
    weights = np.where(segment_good, dt, 0.0)
    integral = float((weights * (left + right) / 2).sum())
    mean = integral / good_time
    if kind == "Average":
        return Result(mean, start)
    if kind == "Total":  # bad periods count at the average (the documented rule), per day
        return Result(mean * (end - start) / TICKS_PER_DAY, start)
    squares = float((weights * (left * left + left * right + right * right) / 3).sum())
    return Result(math.sqrt(max(squares / good_time - mean * mean, 0.0)), start)
