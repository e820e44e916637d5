"""Stream data: `/streams/{id}/recorded|value|end|recordedattime`, `/streamsets/recorded|value`
(interpolated and summary have their own modules).

A stream is a PI point (DP WebID) or an AF attribute (AbE/AbF WebID) that references one; static AF
attributes answer with their constant value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from osipi_connector.piwebapi.pitime import format_ticks
from osipi_connector.simulator import jsonfast
from osipi_connector.simulator.controllers.dataservers import resolve_point
from osipi_connector.simulator.http import ApiError, LazyJson, Request, select_fields
from osipi_connector.simulator.interpolation import interpolate
from osipi_connector.simulator.points import Point
from osipi_connector.simulator.recordedwindow import RecordedWindow
from osipi_connector.simulator.values import STATE_NO_DATA, Events, ValueModel, empty_events

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

BOUNDARY_TYPES = ("Inside", "Outside", "Interpolated")
RETRIEVAL_MODES = ("Auto", "AtOrBefore", "Before", "AtOrAfter", "After", "Exact")
STATIC_TIMESTAMP = "1970-01-01T00:00:00Z"


@dataclass
class Stream:
    web_id: str
    name: str
    path: str
    point: Point | None
    static_value: Any = None
    units: str = ""


class StreamController:
    def __init__(self, sim: Simulator):
        self.sim = sim
        self.values = ValueModel(sim.config)

    # --- resolution ----------------------------------------------------------------------------------
    def stream(self, web_id: str) -> Stream:
        points = self.sim.points
        if web_id[2:4] == "Ab" and getattr(self.sim, "af", None) is not None:
            source = self.sim.af.stream_source(web_id)
            if source is None:
                raise ApiError(404, f"The specified attribute was not found. WebID: '{web_id}'.")
            point = points.point(source.point_index) if source.point_index is not None else None
            return Stream(web_id, source.name, source.path, point, source.static_value, source.units)
        index = resolve_point(self.sim, web_id)
        point = points.point(index)
        return Stream(web_id, point.name, points.path(index), point, units=point.units)

    def max_count(self, request: Request, default: int = 1000) -> int:
        count = request.int_arg("maxCount", default, minimum=1)
        cap = self.sim.config.max_returned_items_per_call
        if count > cap:
            raise ApiError(400, f"Parameter 'maxCount' is greater than the maximum allowed ({cap}).")
        return count

    def streamset(self, request: Request) -> list[tuple[str, Stream]]:
        """The streams of an ad-hoc stream set (`?webId=A&webId=B`), in request order."""
        web_ids = request.args("webId")
        if not web_ids:
            raise ApiError(400, "At least one 'webId' parameter is required.")
        return [(web_id, self.stream(web_id)) for web_id in web_ids]

    # --- recorded ------------------------------------------------------------------------------------
    def recorded_window(self, request: Request) -> tuple[int, int, str, int, int]:
        """startTime, endTime, boundaryType, maxCount and now for a recorded read (400s raised here)."""
        sim = self.sim
        start, end = sim.time_range(request)
        boundary = request.enum_arg("boundaryType", "Inside", BOUNDARY_TYPES)
        return start, end, boundary, self.max_count(request), sim.now_ticks()

    def recorded_items(self, request: Request, stream: Stream, prefix: str = "Items") -> Any:
        """A stream's recorded values for a stream set entry (static attributes: their one value)."""
        if stream.point is None:
            return self.static_items(request, stream, prefix)
        return self.items_json(request, stream.point, self.recorded_events(request, stream.point), prefix)

    def recorded_events(self, request: Request, point: Point) -> Events:
        start, end, boundary, limit, now = self.recorded_window(request)
        inside = self.values.window(point, start, end, now, limit)
        if boundary == "Inside":
            return inside
        descending = end < start
        lo, hi = (end, start) if descending else (start, end)
        if boundary == "Outside":
            head = self.values.before(point, lo, now, inclusive=False)
            tail = self.values.after(point, hi, now)
        else:
            head = self.interpolated_at(point, lo, now)
            tail = self.interpolated_at(point, min(hi, now), now) if hi > lo else empty_events()
            inside = inside.take((inside.ticks != lo) & (inside.ticks != hi))
        if descending:
            head, tail = tail, head
        return Events.concat([head, inside, tail]).take(slice(0, limit))

    def interpolated_at(self, point: Point, t: int, now: int) -> Events:
        """The value at `t` (see `interpolation`); no event before the point's history starts."""
        result = interpolate(self.values, point, np.array([t], dtype=np.int64), now)
        return result if result.system[0] != STATE_NO_DATA else empty_events()

    def items_json(self, request: Request, point: Point, events: Events, prefix: str = "Items") -> LazyJson:
        """The values' JSON, encoded in pieces as the response is sent (large answers stream)."""
        fields = jsonfast.selected_item_fields(request.arg("selectedFields"), prefix)
        return LazyJson(lambda: jsonfast.encode_items_chunked(point, events, fields))

    def static_items(self, request: Request, stream: Stream, prefix: str = "Items") -> list[dict]:
        item = self.static_value(stream)
        fields = jsonfast.selected_item_fields(request.arg("selectedFields"), prefix)
        return [{k: v for k, v in item.items() if k in fields}]

    def static_value(self, stream: Stream) -> dict:
        return timed_value(STATIC_TIMESTAMP, stream.static_value, stream.units)

    def recorded_body(self, request: Request, stream: Stream) -> dict:
        if stream.point is None:
            items: Any = self.static_items(request, stream)
        else:
            items = self.recorded_json(request, stream.point)
        return {"Links": {}, "Items": items, "UnitsAbbreviation": stream.units}

    def recorded_json(self, request: Request, point: Point) -> LazyJson:
        """Recorded values' JSON. Inside boundaries (the default) are generated while the answer is
        sent, so the client reads the first values while the server makes the rest."""
        start, end, boundary, limit, now = self.recorded_window(request)
        if boundary != "Inside":
            return self.items_json(request, point, self.recorded_events(request, point))
        fields = jsonfast.selected_item_fields(request.arg("selectedFields"), "Items")
        return RecordedWindow(self.values, point, start, end, now, limit, fields)

    # --- single values -------------------------------------------------------------------------------
    def value_at(self, stream: Stream, t: int, mode: str = "AtOrBefore") -> dict:
        if stream.point is None:
            return self.static_value(stream)
        now = self.sim.now_ticks()
        values = self.values
        if mode in ("Auto", "AtOrBefore", "Before", "Exact"):
            events = values.before(stream.point, t, now, inclusive=mode != "Before")
            if mode == "Exact" and (not len(events) or events.ticks[0] != t):
                raise ApiError(404, f"No value exists at '{format_ticks(t)}' for '{stream.name}'.")
        else:
            events = values.after(stream.point, t - 1 if mode == "AtOrAfter" else t, now)
        if not len(events):
            return self.no_data(stream, t)
        return orjson.loads(jsonfast.encode_items(stream.point, events))[0]

    @staticmethod
    def no_data(stream: Stream, t: int) -> dict:
        no_data = {"Name": "No Data", "Value": 248, "IsSystem": True}
        return timed_value(format_ticks(t), no_data, stream.units, good=False)


def register(sim: Simulator) -> None:
    router = sim.router
    ctl = sim.streams

    @router.route("GET", "/streams/{web_id}/recorded")
    def recorded(request: Request, web_id: str) -> Any:
        body = ctl.recorded_body(request, ctl.stream(web_id))
        return select_fields(body, request.arg("selectedFields"))

    @router.route("GET", "/streams/{web_id}/value")
    def value(request: Request, web_id: str) -> Any:
        stream = ctl.stream(web_id)
        t = sim.time_arg(request, "time", "*")
        return select_fields(ctl.value_at(stream, t), request.arg("selectedFields"))

    @router.route("GET", "/streams/{web_id}/end")
    def end(request: Request, web_id: str) -> Any:
        stream = ctl.stream(web_id)
        return select_fields(ctl.value_at(stream, sim.now_ticks()), request.arg("selectedFields"))

    @router.route("GET", "/streams/{web_id}/recordedattime")
    def recorded_at_time(request: Request, web_id: str) -> Any:
        stream = ctl.stream(web_id)
        if not request.arg("time"):
            raise ApiError(400, "The 'time' parameter is required.")
        t = sim.time_arg(request, "time", "*")
        mode = request.enum_arg("retrievalMode", "Auto", RETRIEVAL_MODES)
        return select_fields(ctl.value_at(stream, t, mode), request.arg("selectedFields"))

    @router.route("GET", "/streamsets/recorded")
    def streamset_recorded(request: Request) -> Any:
        items = [
            streamset_item(
                w, stream, Items=ctl.recorded_items(request, stream, "Items.Items"), UnitsAbbreviation=stream.units
            )
            for w, stream in ctl.streamset(request)
        ]
        return select_fields({"Links": {}, "Items": items}, request.arg("selectedFields"))

    @router.route("GET", "/streamsets/value")
    def streamset_value(request: Request) -> Any:
        t = sim.time_arg(request, "time", "*")
        items = [streamset_item(w, stream, Value=ctl.value_at(stream, t)) for w, stream in ctl.streamset(request)]
        return select_fields({"Links": {}, "Items": items}, request.arg("selectedFields"))


def streamset_item(web_id: str, stream: Stream, **members: Any) -> dict:
    """One stream of a stream set answer (PIStreamValues / PIStreamValue)."""
    return {"WebId": web_id, "Name": stream.name, "Path": stream.path, "Links": {}, **members}


def timed_value(timestamp: str, value: Any, units: str, good: bool = True) -> dict:
    """A PI TimedValue object built one at a time (the bulk path is jsonfast)."""
    return {
        "Timestamp": timestamp,
        "Value": value,
        "UnitsAbbreviation": units,
        "Good": good,
        "Questionable": False,
        "Substituted": False,
        "Annotated": False,
    }
