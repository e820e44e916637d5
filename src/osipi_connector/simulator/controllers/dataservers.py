"""Data servers and PI points: `/dataservers`, `/dataservers/{id}/points`, `/points/{id}[/attributes]`."""

from __future__ import annotations

import fnmatch
from typing import TYPE_CHECKING

from osipi_connector.piwebapi.pitime import format_ticks
from osipi_connector.simulator.http import ApiError, Request, paginate, select_fields

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator


def register(sim: Simulator) -> None:
    router = sim.router
    points = sim.points

    def server_json(request: Request) -> dict:
        web_id = points.server_webid
        return {
            "WebId": web_id,
            "Id": str(points.server_guid),
            "Name": points.server_name,
            "Path": f"\\\\PIServers[{points.server_name}]",
            "IsConnected": True,
            "ServerVersion": "3.4.445.688",
            "ServerTime": _server_time(sim),
            "Links": {
                "Self": request.link(f"/dataservers/{web_id}"),
                "Points": request.link(f"/dataservers/{web_id}/points"),
                "EnumerationSets": request.link(f"/dataservers/{web_id}/enumerationsets"),
            },
        }

    def check_server(request: Request, web_id: str) -> None:
        sim.ids.resolve(web_id, "DS", "dataserver", path=points.server_name)

    @router.route("GET", "/dataservers")
    def list_servers(request: Request) -> dict:
        name = request.arg("name")
        path = request.arg("path")
        if name is not None or path is not None:  # GetByName / GetByPath
            wanted = (name or path or "").split("[")[-1].rstrip("]").lstrip("\\")
            if wanted.upper() != points.server_name.upper():
                raise ApiError(404, f"PI Data Archive '{wanted}' was not found.")
            return select_fields(server_json(request), request.arg("selectedFields"))
        body = {"Links": {}, "Items": [server_json(request)]}
        return select_fields(body, request.arg("selectedFields"))

    @router.route("GET", "/dataservers/{web_id}")
    def get_server(request: Request, web_id: str) -> dict:
        check_server(request, web_id)
        return select_fields(server_json(request), request.arg("selectedFields"))

    @router.route("GET", "/dataservers/{web_id}/points")
    def list_points(request: Request, web_id: str) -> dict:
        check_server(request, web_id)
        matches = points.search(request.arg("nameFilter"))
        page, links = paginate(request, matches)
        body = {"Links": links, "Items": [points.to_json(i, request.link) for i in page]}
        return select_fields(body, request.arg("selectedFields"))

    @router.route("GET", "/points")
    def point_by_path(request: Request) -> dict:
        path = request.arg("path")
        if not path:
            raise ApiError(400, "The 'path' parameter is required.")
        server, _, tag = path.lstrip("\\").partition("\\")
        index = points.find_name(tag) if server.upper() == points.server_name.upper() else None
        if index is None:
            raise ApiError(404, f"PI Point not found '{path}'.")
        return select_fields(points.to_json(index, request.link), request.arg("selectedFields"))

    @router.route("GET", "/points/{web_id}")
    def get_point(request: Request, web_id: str) -> dict:
        index = resolve_point(sim, web_id)
        return select_fields(points.to_json(index, request.link), request.arg("selectedFields"))

    @router.route("GET", "/points/{web_id}/attributes")
    def point_attributes(request: Request, web_id: str) -> dict:
        index = resolve_point(sim, web_id)
        table = points.attributes(index)
        names = request.args("name")
        unknown = [n for n in names if n.lower() not in table]
        if unknown:
            raise ApiError(400, f"The point attribute '{unknown[0]}' was not found.")
        selected = [n.lower() for n in names] if names else list(table)
        name_filter = request.arg("nameFilter")
        if name_filter:
            selected = [n for n in selected if fnmatch.fnmatch(n, name_filter.lower())]
        items = [{"Name": n, "Value": table[n], "Links": {}} for n in selected]
        return select_fields({"Links": {}, "Items": items}, request.arg("selectedFields"))

    @router.route("GET", "/points/{web_id}/attributes/{name}")
    def point_attribute(request: Request, web_id: str, name: str) -> dict:
        table = points.attributes(resolve_point(sim, web_id))
        if name.lower() not in table:
            raise ApiError(404, f"The point attribute '{name}' was not found.")
        return select_fields(
            {"Name": name.lower(), "Value": table[name.lower()], "Links": {}}, request.arg("selectedFields")
        )

    @router.route("GET", "/dataservers/{web_id}/license")
    def license(request: Request, web_id: str) -> dict:
        """DataServer GetLicense: the point count against a licence large enough for any configuration."""
        check_server(request, web_id)
        total = max(100_000, points.count)
        body = {"Name": "PI Server points", "AmountUsed": points.count, "AmountLeft": total - points.count,
                "TotalAmount": total, "Links": {}}  # fmt: skip
        return select_fields(body, request.arg("selectedFields"))


def resolve_point(sim: Simulator, web_id: str) -> int:
    """A point index from a WebID; 404/400 with PI's messages otherwise."""
    index = sim.points.index_of(web_id)
    if index is None:
        sim.ids.resolve(web_id, "DP", "dataserver")  # raises 400 for a malformed/foreign WebID
        raise ApiError(404, f"The specified PI Point was not found. WebID: '{web_id}'.")
    return index


def _server_time(sim: Simulator) -> str:
    return format_ticks(sim.now_ticks())
