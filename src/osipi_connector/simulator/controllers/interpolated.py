"""`GET /streams/{webId}/interpolated`: values on a regular grid (Stream GetInterpolated).

Parameters as documented: startTime (`*-1d`), endTime (`*`), interval (`1h`), timeZone, selectedFields;
desiredUnits, filterExpression, includeFilteredValues, syncTime are accepted and ignored. The grid is
startTime, startTime + interval, ... up to and including endTime (descending when endTime is earlier).
More grid points than MaxReturnedItemsPerCall is a 400, as on the real server.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from osipi_connector.piwebapi.pitime import format_ticks
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


def register(sim: Simulator) -> None:
    ctl = sim.streams  # registered by the streams controller

    @sim.router.route("GET", "/streams/{web_id}/interpolated")
    def interpolated(request: Request, web_id: str) -> Any:
        stream = ctl.stream(web_id)
        start = sim.time_arg(request, "startTime", "*-1d")
        end = sim.time_arg(request, "endTime", "*")
        step = sim.span_arg(request, "interval", "1h")
        times = grid(start, end, step, sim.config.max_returned_items_per_call)
        if stream.point is None:  # a static AF attribute: its constant value at every time
            value = ctl.static_value(stream)
            items: Any = [{**value, "Timestamp": format_ticks(int(t))} for t in times.tolist()]
        else:
            events = interpolate(ctl.values, stream.point, times, sim.now_ticks())
            items = ctl.items_json(request, stream.point, events)
        body = {"Links": {}, "Items": items, "UnitsAbbreviation": stream.units}
        return select_fields(body, request.arg("selectedFields"))
