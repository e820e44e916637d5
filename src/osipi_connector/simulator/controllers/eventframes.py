"""Event frames: searches on a database or element, single frames, their attributes and elements.

Searches follow PI's parameter rules: `searchMode` defaults to Overlapped over `*-8h`..`*`; the
Backward*/Forward* modes take only `startTime` (endTime, sortField and sortOrder are a 400) and come
back in time order from that point.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from osipi_connector.piwebapi.pitime import format_ticks
from osipi_connector.simulator import rng
from osipi_connector.simulator.af import PEOPLE, TEMPLATE_INDEX, TEMPLATES, wildcard
from osipi_connector.simulator.controllers.assets import (
    attributes_body,
    check_max_count,
    descending,
    element_json,
    items_body,
    optional_bool,
    resolve_database,
    stream_set_links,
)
from osipi_connector.simulator.eventframes import (
    DIRECTION_MODES,
    NOT_ACKNOWLEDGED,
    OPEN_END,
    SEARCH_MODES,
    SEVERITIES,
    Frame,
    FrameQuery,
)
from osipi_connector.simulator.http import ApiError, Request, select_fields

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

SORT_FIELDS = ("Name", "StartTime", "EndTime")
SECURITY = {
    "CanAnnotate": True,
    "CanDelete": False,
    "CanExecute": False,
    "CanRead": True,
    "CanReadData": True,
    "CanSubscribe": True,
    "CanSubscribeOthers": False,
    "CanWrite": False,
    "CanWriteData": False,
    "HasAdmin": False,
    "Rights": ["Read", "ReadData", "Subscribe", "Annotate"],
}


def parse_query(sim: Simulator, request: Request, element: int | None = None) -> FrameQuery:
    """A FrameQuery from PI's event-frame search parameters; 400 on bad values or combinations."""
    mode = request.enum_arg("searchMode", "Overlapped", SEARCH_MODES)
    if mode in DIRECTION_MODES:
        for name in ("endTime", "sortField", "sortOrder"):
            if request.arg(name):
                raise ApiError(400, f"The parameter '{name}' cannot be specified when searchMode is '{mode}'.")
    if mode in DIRECTION_MODES:
        start = end = sim.time_arg(request, "startTime", "*-8h")
    else:
        start, end = sim.time_range(request, "*-8h")
    severities = []
    for raw in request.args("severity"):
        match = next((i for i, s in enumerate(SEVERITIES) if s.lower() == raw.lower()), None)
        if match is None:
            raise ApiError(400, f"The value '{raw}' is not valid for severity. Valid values: {', '.join(SEVERITIES)}.")
        severities.append(match)
    return FrameQuery(
        mode=mode,
        start=start,
        end=end,
        name=wildcard(request.arg("nameFilter")),
        referenced_name=wildcard(request.arg("referencedElementNameFilter")),
        referenced_template=request.arg("referencedElementTemplateName") or None,
        template=request.arg("templateName") or None,
        category=request.arg("categoryName") or None,
        severities=tuple(severities) or None,
        can_be_acknowledged=optional_bool(request, "canBeAcknowledged"),
        is_acknowledged=optional_bool(request, "isAcknowledged"),
        element=element,
        full_hierarchy=request.bool_arg("searchFullHierarchy", False),
        sort_field=request.enum_arg("sortField", "Name", SORT_FIELDS),
        descending=descending(request),
    )


def register(sim: Simulator) -> None:
    router = sim.router
    af, model = sim.af, sim.event_frames

    def frame_json(request: Request, frame: Frame) -> dict:
        """PI Web API's PIEventFrame object."""
        w, link = model.webid(frame), request.link
        template = TEMPLATES[TEMPLATE_INDEX[frame.kind.template]]
        refs = [af.webid(x) for x in frame.refs]
        links = {
            "Self": link(f"/eventframes/{w}"),
            "Attributes": link(f"/eventframes/{w}/attributes"),
            "EventFrames": link(f"/eventframes/{w}/eventframes"),
            "Database": link(f"/assetdatabases/{af.database_webid}"),
            "ReferencedElements": link(f"/eventframes/{w}/referencedelements"),
            "PrimaryReferencedElement": link(f"/elements/{refs[0]}"),
            "Template": link(f"/elementtemplates/{af.template_webid(TEMPLATE_INDEX[template.name])}"),
            "Categories": link(f"/eventframes/{w}/categories"),
            "Annotations": link(f"/eventframes/{w}/annotations"),
            **stream_set_links(w, link),
            "Security": link(f"/eventframes/{w}/security"),
            "SecurityEntries": link(f"/eventframes/{w}/securityentries"),
        }
        acked_by = f"PLANT\\{PEOPLE[int(rng.u(sim.config.seed, 504, frame.slot) * len(PEOPLE))]}"
        return {
            "WebId": w,
            "Id": str(model.guid(frame.slot)),
            "Name": frame.name,
            "Description": f"{template.description} on {af.name(frame.refs[0])}",
            "Path": model.path(frame),
            "TemplateName": template.name,
            "HasChildren": False,
            "CategoryNames": list(template.categories),
            "ExtendedProperties": {},
            "StartTime": format_ticks(frame.start),
            "EndTime": OPEN_END if frame.open else format_ticks(frame.end),
            "Severity": frame.severity,
            "AcknowledgedBy": acked_by if frame.acknowledged is not None else "",
            "AcknowledgedDate": format_ticks(frame.acknowledged)
            if frame.acknowledged is not None
            else NOT_ACKNOWLEDGED,
            "CanBeAcknowledged": template.can_be_acknowledged,
            "IsAcknowledged": frame.acknowledged is not None,
            "IsAnnotated": frame.annotated,
            "IsLocked": frame.locked,
            "AreValuesCaptured": not frame.open and template.name != "Alarm",
            "RefElementWebIds": refs,
            "Security": dict(SECURITY),
            "Links": links,
        }

    def search(request: Request, element: int | None) -> dict:
        check_max_count(sim, request)
        query = parse_query(sim, request, element)
        now = sim.now_ticks()
        slots = model.search(query, now)

        def item(slot: int) -> dict:
            frame = model.frame(slot, now)
            assert frame is not None, "search() lists frames that exist as of now"
            return frame_json(request, frame)

        return items_body(request, slots, item)

    def fields(request: Request, body: dict) -> dict:
        return select_fields(body, request.arg("selectedFields"))

    @router.route("GET", "/assetdatabases/{web_id}/eventframes")
    def database_frames(request: Request, web_id: str) -> dict:
        resolve_database(sim, web_id)
        return search(request, None)

    @router.route("GET", "/elements/{web_id}/eventframes")
    def element_frames(request: Request, web_id: str) -> dict:
        return search(request, af.resolve(web_id))

    @router.route("GET", "/eventframes")
    def frame_by_path(request: Request) -> dict:
        path = request.arg("path")
        if not path:
            raise ApiError(400, "The 'path' parameter is required.")
        frame = model.find(path)
        if frame is None:
            raise ApiError(404, f"The specified event frame was not found. Path: '{path}'.")
        return fields(request, frame_json(request, frame))

    @router.route("GET", "/eventframes/{web_id}")
    def get_frame(request: Request, web_id: str) -> dict:
        return fields(request, frame_json(request, model.resolve(web_id)))

    @router.route("GET", "/eventframes/{web_id}/attributes")
    def frame_attributes(request: Request, web_id: str) -> dict:
        frame = model.resolve(web_id)
        refs = [model.attribute(frame, n) for n in range(len(model.attributes(frame)))]
        return attributes_body(sim, request, refs)

    @router.route("GET", "/eventframes/{web_id}/referencedelements")
    def referenced_elements(request: Request, web_id: str) -> dict:
        frame = model.resolve(web_id)
        return fields(request, {"Links": {}, "Items": [element_json(sim, x, request) for x in frame.refs]})

    @router.route("GET", "/eventframes/{web_id}/eventframes")
    def child_frames(request: Request, web_id: str) -> dict:
        model.resolve(web_id)  # frames here have no children; the search parameters are still checked
        parse_query(sim, request)
        return fields(request, {"Links": {}, "Items": []})
