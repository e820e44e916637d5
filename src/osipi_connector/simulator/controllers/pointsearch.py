"""`GET /points/search` (Point GetPointsBySearch): PI points matching a PIPoint search query.

Parameters as documented: dataServerWebId (optional: every data server), query (PIPoint query syntax,
see `pointquery`; empty = all points), startIndex, maxCount (default 1000, at most 1000),
selectedFields, searchNameAndDescriptor (a Tag filter also matches the Descriptor). Items are point
objects exactly as `GET /points/{webId}` answers them. Registered before `/points/{webId}`, whose
pattern would otherwise take "search" for a WebID.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from osipi_connector.simulator.http import ApiError, Request, paginate, select_fields
from osipi_connector.simulator.pointquery import Filter, QueryError, parse_query

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

MAX_PAGE = 1000


def register(sim: Simulator) -> None:
    points = sim.points

    def attribute_reader(index: int) -> Callable[[str], object]:
        table: dict[str, object] = {}

        def read(name: str) -> object:
            if name == "tag":
                return points.name(index)
            if not table:
                table.update(points.attributes(index))
            if name not in table:
                raise ApiError(400, f"'{name}' is not a PI point attribute: check the query's filter names.")
            return table[name]

        return read

    def matches(index: int, groups: list[list[Filter]], name_and_descriptor: bool) -> bool:
        read = attribute_reader(index)
        for group in groups:
            if all(f.matches(read) for f in group):
                return True
            if name_and_descriptor and not any(f.attribute == "descriptor" for f in group):
                swapped = [_as_descriptor(f) for f in group]
                if swapped != group and all(f.matches(read) for f in swapped):
                    return True
        return False

    @sim.router.route("GET", "/points/search")
    def search(request: Request) -> dict:
        server = request.arg("dataServerWebId")
        if server:
            sim.ids.resolve(server, "DS", "dataserver", path=sim.points.server_name)
        if request.int_arg("maxCount", MAX_PAGE, minimum=1) > MAX_PAGE:
            raise ApiError(400, f"Parameter 'maxCount' cannot be greater than {MAX_PAGE} for a point search.")
        query = request.arg("query") or ""
        try:
            groups = parse_query(query)
        except QueryError as exc:
            raise ApiError(400, str(exc)) from None
        both = request.bool_arg("searchNameAndDescriptor", False)
        candidates: range | list[int] = range(points.total)
        names = [f for f in groups[0] if f.attribute == "tag" and f.operator == "="] if len(groups) == 1 else []
        if names and not both:  # narrow by name first: attribute tables cost more
            candidates = [i for i in candidates if names[0].regex.fullmatch(points.name(i))]
        found = [i for i in candidates if matches(i, groups, both)]
        page, links = paginate(request, found)
        body = {"Links": links, "Items": [points.to_json(i, request.link) for i in page]}
        return select_fields(body, request.arg("selectedFields"))


def _as_descriptor(query_filter: Filter) -> Filter:
    """A Tag filter turned into the same filter on the Descriptor (searchNameAndDescriptor)."""
    if query_filter.attribute != "tag":
        return query_filter
    return Filter("descriptor", query_filter.operator, query_filter.pattern, query_filter.regex)
