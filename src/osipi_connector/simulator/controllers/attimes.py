"""Stream actions at given times and the remaining stream-set forms: `/streams/{id}/recordedattimes`,
`/streamsets[/{id}]/recordedattime|recordedattimes|interpolatedattimes`, `/streamsets/end`,
`/streamsets/joined` and `/attributes/{id}/value` (Attribute GetValue, the same value as the stream's).

Parameters as documented on each action's reference page: `time` (repeatable for the *attimes forms),
`retrievalMode` (Auto default), `sortOrder`; joined takes `baseWebId` and `subordinateWebId` and
answers the base stream's recorded values first, then each subordinate interpolated at their times.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from osipi_connector.simulator.controllers.interpolated import values_at
from osipi_connector.simulator.controllers.owner_streamsets import owner_stream_set
from osipi_connector.simulator.controllers.streams import RETRIEVAL_MODES, Stream, streamset_item
from osipi_connector.simulator.http import ApiError, Request, select_fields

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator


def register(sim: Simulator) -> None:
    router, ctl = sim.router, sim.streams

    def times(request: Request) -> list[int]:
        texts = request.args("time")
        if not texts:
            raise ApiError(400, "At least one 'time' parameter is required.")
        ticks = sorted(sim.time_text(request, text) for text in texts)
        descending = request.enum_arg("sortOrder", "Ascending", ("Ascending", "Descending")) == "Descending"
        return ticks[::-1] if descending else ticks

    def at_time(request: Request) -> Callable[[Stream], dict]:
        if not request.arg("time"):
            raise ApiError(400, "The 'time' parameter is required.")
        t = sim.time_arg(request, "time", "*")
        mode = request.enum_arg("retrievalMode", "Auto", RETRIEVAL_MODES)
        return lambda stream: {"Value": value_or_no_data(stream, t, mode)}

    def value_or_no_data(stream: Stream, t: int, mode: str) -> dict:
        """One recorded value; `Exact` without a value at `t` is PI's "No Data" here, not a failed request."""
        try:
            return ctl.value_at(stream, t, mode)
        except ApiError as exc:
            if exc.status != 404:
                raise
            return ctl.no_data(stream, t)

    def at_times(request: Request) -> Callable[[Stream], dict]:
        wanted = times(request)
        mode = request.enum_arg("retrievalMode", "Auto", RETRIEVAL_MODES)
        return lambda s: {"Items": [value_or_no_data(s, t, mode) for t in wanted], "UnitsAbbreviation": s.units}

    def interpolated_at_times(request: Request) -> Callable[[Stream], dict]:
        grid = np.array(times(request), dtype=np.int64)
        return lambda s: {"Items": values_at(sim, request, s, grid, "Items.Items"), "UnitsAbbreviation": s.units}

    def adhoc(make: Callable[[Request], Callable[[Stream], dict]]) -> Callable[[Request], Any]:
        def handler(request: Request) -> Any:
            streams = ctl.streamset(request)
            members = make(request)
            items = [streamset_item(w, s, **members(s)) for w, s in streams]
            return select_fields({"Links": {}, "Items": items}, request.arg("selectedFields"))

        return handler

    def owned(make: Callable[[Request], Callable[[Stream], dict]]) -> Callable[..., Any]:
        def handler(request: Request, web_id: str) -> Any:
            members = make(request)
            return owner_stream_set(sim, request, web_id, members)

        return handler

    def end(request: Request) -> Callable[[Stream], dict]:
        now = sim.now_ticks()
        return lambda s: {"Value": ctl.value_at(s, now)}

    for action, make in (
        ("recordedattime", at_time),
        ("recordedattimes", at_times),
        ("interpolatedattimes", interpolated_at_times),
    ):
        router.add("GET", f"/streamsets/{action}", adhoc(make))
        router.add("GET", f"/streamsets/{{web_id}}/{action}", owned(make))
    router.add("GET", "/streamsets/end", adhoc(end))

    @router.route("GET", "/streams/{web_id}/recordedattimes")
    def recorded_at_times(request: Request, web_id: str) -> Any:
        stream = ctl.stream(web_id)
        body = {"Links": {}, **at_times(request)(stream)}
        return select_fields(body, request.arg("selectedFields"))

    @router.route("GET", "/attributes/{web_id}/value")
    def attribute_value(request: Request, web_id: str) -> Any:
        sim.af.resolve_attribute(web_id)
        stream = ctl.stream(web_id)
        t = sim.time_arg(request, "time", "*")
        return select_fields(ctl.value_at(stream, t), request.arg("selectedFields"))

    @router.route("GET", "/streamsets/joined")
    def joined(request: Request) -> Any:
        base_id = request.arg("baseWebId")
        if not base_id:
            raise ApiError(400, "The 'baseWebId' parameter is required.")
        base = ctl.stream(base_id)
        subordinates = [(w, ctl.stream(w)) for w in request.args("subordinateWebId")]
        if base.point is None:
            events_ticks = np.array([], dtype=np.int64)
            base_items: Any = ctl.static_items(request, base, "Items.Items")
        else:
            events = ctl.recorded_events(request, base.point)
            events_ticks = np.asarray(events.ticks, dtype=np.int64)
            base_items = ctl.items_json(request, base.point, events, "Items.Items")
        items = [streamset_item(base_id, base, Items=base_items, UnitsAbbreviation=base.units)]
        for w, stream in subordinates:
            values = values_at(sim, request, stream, events_ticks, "Items.Items")
            items.append(streamset_item(w, stream, Items=values, UnitsAbbreviation=stream.units))
        return select_fields({"Links": {}, "Items": items}, request.arg("selectedFields"))
