"""An element's or event frame's attributes as a stream set: `/streamsets/{webId}/value|end|recorded|
interpolated|plot|summary` (StreamSet GetValues, GetEnd, GetRecorded, GetInterpolated, GetPlot,
GetSummaries), the targets of the `Value`, `EndValue`, `RecordedData`, `InterpolatedData`, `PlotData`
and `SummaryData` links of elements and event frames.

Attributes are filtered and ordered as `/attributes` does by default (nameFilter, categoryName,
templateName, showExcluded, showHidden; by name); each entry is `{WebId, Name, Path, Links, Value}` or `{..., Items,
UnitsAbbreviation}`, and the time parameters are those of the single-stream actions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from osipi_connector.simulator.af import AttributeRef
from osipi_connector.simulator.controllers.assets import attribute_filter
from osipi_connector.simulator.controllers.interpolated import request_grid, values_at
from osipi_connector.simulator.controllers.plot import plot_items
from osipi_connector.simulator.controllers.streams import Stream, streamset_item
from osipi_connector.simulator.controllers.summary import parse_request, streamset_summary_items
from osipi_connector.simulator.http import ApiError, Request, select_fields

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator


def owner_attributes(sim: Simulator, request: Request, web_id: str) -> list[AttributeRef]:
    """The attributes of the element or event frame `web_id`, filtered and ordered as `/attributes`."""
    marker = web_id[2:4]
    if marker == "Em":
        x = sim.af.resolve(web_id)
        refs = [sim.af.attribute(x, n) for n in range(len(sim.af.attributes(x)))]
    elif marker == "Fm":
        model = sim.event_frames
        frame = model.resolve(web_id)
        refs = [model.attribute(frame, n) for n in range(len(model.attributes(frame)))]
    else:
        raise ApiError(400, f"The WebID '{web_id}' names neither an element nor an event frame.")
    keep = attribute_filter(request)
    return sorted(filter(keep, refs), key=lambda ref: (ref.spec.name.upper(), ref.spec.name))  # as /attributes


def owner_stream_set(sim: Simulator, request: Request, web_id: str, members: Callable[[Stream], dict]) -> Any:
    """An owner's attributes as a stream set, each entry `{WebId, Name, Path, Links, **members(stream)}`."""
    items = []
    for ref in owner_attributes(sim, request, web_id):
        stream = sim.streams.stream(ref.web_id)
        items.append(streamset_item(ref.web_id, stream, **members(stream)))
    return select_fields({"Links": {}, "Items": items}, request.arg("selectedFields"))


def register(sim: Simulator) -> None:
    ctl = sim.streams

    def stream_set(request: Request, web_id: str, members: Callable[[Stream], dict]) -> Any:
        return owner_stream_set(sim, request, web_id, members)

    @sim.router.route("GET", "/streamsets/{web_id}/value")
    def values(request: Request, web_id: str) -> Any:
        t = sim.time_arg(request, "time", "*")
        return stream_set(request, web_id, lambda s: {"Value": ctl.value_at(s, t)})

    @sim.router.route("GET", "/streamsets/{web_id}/end")
    def end_values(request: Request, web_id: str) -> Any:
        return stream_set(request, web_id, lambda s: {"Value": ctl.value_at(s, sim.now_ticks())})

    @sim.router.route("GET", "/streamsets/{web_id}/recorded")
    def recorded(request: Request, web_id: str) -> Any:
        def members(stream: Stream) -> dict:
            return {"Items": ctl.recorded_items(request, stream, "Items.Items"), "UnitsAbbreviation": stream.units}

        return stream_set(request, web_id, members)

    @sim.router.route("GET", "/streamsets/{web_id}/interpolated")
    def interpolated(request: Request, web_id: str) -> Any:
        times = request_grid(sim, request)

        def members(stream: Stream) -> dict:
            return {"Items": values_at(sim, request, stream, times, "Items.Items"), "UnitsAbbreviation": stream.units}

        return stream_set(request, web_id, members)

    @sim.router.route("GET", "/streamsets/{web_id}/plot")
    def plot(request: Request, web_id: str) -> Any:
        def members(stream: Stream) -> dict:
            return {"Items": plot_items(sim, request, stream, "Items.Items"), "UnitsAbbreviation": stream.units}

        return stream_set(request, web_id, members)

    @sim.router.route("GET", "/streamsets/{web_id}/summary")
    def summaries(request: Request, web_id: str) -> Any:
        spec = parse_request(sim, request)
        return stream_set(request, web_id, lambda s: {"Items": streamset_summary_items(sim, spec, s)})
