"""Interpolated values: `/streams/{webId}/interpolated` (a regular grid), `/interpolatedattimes`
(given times) and `/streamsets/interpolated?webId=...` (a grid for several streams).

Parameters as documented: startTime (`*-1d`), endTime (`*`), interval (`1h`), time (repeatable) with
sortOrder (Ascending, Descending), timeZone, selectedFields; desiredUnits, filterExpression,
includeFilteredValues, syncTime are accepted and ignored. The grid is startTime, startTime + interval,
... up to and including endTime (descending when endTime is earlier). More grid points than
MaxReturnedItemsPerCall is a 400, as on the real server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from osipi_connector.piwebapi.pitime import format_ticks
from osipi_connector.simulator.controllers.streams import Stream, streamset_item
from osipi_connector.simulator.http import ApiError, Request, select_fields
from osipi_connector.simulator.interpolation import interpolate

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator


def grid(start: int, end: int, step: int, cap: int) -> np.ndarray:
    """start, start ± step, ... towards end (inclusive); 400 beyond `cap` points."""
    count = abs(end - start) // step + 1
    if count > cap:
        raise ApiError(
            400,
            f"The request would return {count} values, more than the maximum allowed ({cap}): "
            "use a longer interval or a shorter time range.",
        )
    direction = 1 if end >= start else -1
    return start + direction * step * np.arange(count, dtype=np.int64)


def values_at(sim: Simulator, request: Request, stream: Stream, times: np.ndarray, prefix: str = "Items") -> Any:
    """A stream's interpolated values at `times` as JSON items (static attributes: their constant)."""
    if stream.point is None:
        value = sim.streams.static_value(stream)
        return [{**value, "Timestamp": format_ticks(int(t))} for t in times.tolist()]
    events = interpolate(sim.streams.values, stream.point, times, sim.now_ticks())
    return sim.streams.items_json(request, stream.point, events, prefix)


def request_grid(sim: Simulator, request: Request) -> np.ndarray:
    """The grid a request's startTime, endTime and interval describe."""
    start, end = sim.time_range(request)
    step = sim.span_arg(request, "interval", "1h")
    return grid(start, end, step, sim.config.max_returned_items_per_call)


def register(sim: Simulator) -> None:
    ctl = sim.streams

    def body(request: Request, stream: Stream, times: np.ndarray) -> Any:
        items = {"Links": {}, "Items": values_at(sim, request, stream, times), "UnitsAbbreviation": stream.units}
        return select_fields(items, request.arg("selectedFields"))

    @sim.router.route("GET", "/streams/{web_id}/interpolated")
    def interpolated(request: Request, web_id: str) -> Any:
        return body(request, ctl.stream(web_id), request_grid(sim, request))

    @sim.router.route("GET", "/streams/{web_id}/interpolatedattimes")
    def interpolated_at_times(request: Request, web_id: str) -> Any:
        stream = ctl.stream(web_id)
        texts = request.args("time")
        if not texts:
            raise ApiError(400, "At least one 'time' parameter is required.")
        times = np.array([sim.time_text(request, text) for text in texts], dtype=np.int64)
        descending = request.enum_arg("sortOrder", "Ascending", ("Ascending", "Descending")) == "Descending"
        times = np.sort(times)[::-1] if descending else np.sort(times)
        return body(request, stream, times)

    @sim.router.route("GET", "/streamsets/interpolated")
    def streamset_interpolated(request: Request) -> Any:
        streams = ctl.streamset(request)
        times = request_grid(sim, request)
        items = [
            streamset_item(w, s, Items=values_at(sim, request, s, times, "Items.Items"), UnitsAbbreviation=s.units)
            for w, s in streams
        ]
        return select_fields({"Links": {}, "Items": items}, request.arg("selectedFields"))
