"""`GET /streams/{webId}/plot` (Stream GetPlot) and `/streamsets/plot?webId=...`: values for drawing.

As documented: the time range is cut into `intervals` (default 24; typically pixels) and each interval
gives at most five of its recorded values, in time order without repeats: the first, the last, the
lowest and the highest good value (numeric points) and one exceptional value (a system state).
Parameters: startTime (`*-1d`), endTime (`*`), intervals, timeZone, selectedFields; desiredUnits is
accepted and ignored. Interpolated values at the range ends are not added (a simplification).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from osipi_connector.simulator.controllers.streams import Stream, streamset_item
from osipi_connector.simulator.http import ApiError, Request, select_fields
from osipi_connector.simulator.values import Events

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator


def plot_events(events: Events, lo: int, hi: int, intervals: int, numeric: bool) -> Events:
    """The significant events of each interval of [lo, hi] (events ascending)."""
    if not len(events):
        return events
    edges = lo + (hi - lo) * np.arange(1, intervals, dtype=np.int64) // intervals
    bucket = np.searchsorted(edges, events.ticks, side="right")
    starts = np.flatnonzero(np.diff(bucket, prepend=-1))
    ends = np.append(starts[1:], len(events))
    keep: set[int] = set()
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        keep.update((s, e - 1))
        bad = np.flatnonzero(events.system[s:e])
        if len(bad):
            keep.add(s + int(bad[0]))
        good = np.flatnonzero(events.system[s:e] == 0)
        if numeric and len(good):
            values = events.value[s:e][good]
            keep.update((s + int(good[values.argmin()]), s + int(good[values.argmax()])))
    return events.take(np.array(sorted(keep), dtype=np.int64))


def plot_items(sim: Simulator, request: Request, stream: Stream, prefix: str = "Items") -> Any:
    """A stream's plot values as JSON items (static attributes: their one value)."""
    if stream.point is None:
        return sim.streams.static_items(request, stream, prefix)
    start, end = sim.time_range(request)
    intervals = request.int_arg("intervals", 24, minimum=1)
    cap = sim.config.max_returned_items_per_call
    if intervals > cap:
        raise ApiError(400, f"Parameter 'intervals' is greater than the maximum allowed ({cap}).")
    lo, hi = min(start, end), max(start, end)
    point = stream.point
    events = sim.streams.values.window(point, lo, hi, sim.now_ticks(), None)
    chosen = plot_events(events, lo, hi, intervals, point.point_type not in ("Digital", "String"))
    if end < start:
        chosen = chosen.take(slice(None, None, -1))
    return sim.streams.items_json(request, point, chosen, prefix)


def register(sim: Simulator) -> None:
    ctl = sim.streams

    @sim.router.route("GET", "/streams/{web_id}/plot")
    def plot(request: Request, web_id: str) -> Any:
        stream = ctl.stream(web_id)
        body = {"Links": {}, "Items": plot_items(sim, request, stream), "UnitsAbbreviation": stream.units}
        return select_fields(body, request.arg("selectedFields"))

    @sim.router.route("GET", "/streamsets/plot")
    def streamset_plot(request: Request) -> Any:
        items = [
            streamset_item(w, s, Items=plot_items(sim, request, s, "Items.Items"), UnitsAbbreviation=s.units)
            for w, s in ctl.streamset(request)
        ]
        return select_fields({"Links": {}, "Items": items}, request.arg("selectedFields"))
