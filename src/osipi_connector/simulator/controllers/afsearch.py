"""AF search by query: `GET /elements/search`, `/eventframes/search`, `/attributes/search`
(Element GetElementsQuery, EventFrame GetEventFramesQuery, Attribute GetAttributesQuery,
https://docs.aveva.com/bundle/pi-web-api-reference/page/help/controllers/element/actions/getelementsquery.html).

The query is AF search syntax, terms ANDed: `Name:'P-00*' Template:Pump Category:Critical
Description:...` for elements; the same plus `Start:>time` / `End:<time` for event frames; for
attributes `Element:{<element terms>} Name:'Flow*' Category:... Type:Single`. Each search is answered
by the listing it amounts to (the database's elements over the full hierarchy, its event frames), so
the two can never disagree. Unknown fields are a 400 that names the supported ones.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from osipi_connector.simulator.af import wildcard
from osipi_connector.simulator.controllers.assets import attribute_json, check_max_count, items_body
from osipi_connector.simulator.http import ApiError, Request, Response

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

_TERM = re.compile(r"""(\w+):=?\s*(?:\{([^}]*)\}|'([^']*)'|"([^"]*)"|(\S+))""")
ELEMENT_FIELDS = {"name": "nameFilter", "description": "descriptionFilter", "template": "templateName",
                  "category": "categoryName"}  # fmt: skip
FRAME_FIELDS = {"name": "nameFilter", "template": "templateName", "category": "categoryName"}
ATTRIBUTE_FIELDS = ("element", "name", "category", "type")


def parse(query: str, allowed: tuple[str, ...]) -> list[tuple[str, str]]:
    """`field:value` terms (value quoted, braced or bare), fields lower-cased; 400 on anything else."""
    terms, rest = [], query
    for match in _TERM.finditer(query):
        field = match[1].lower()
        if field not in allowed:
            raise ApiError(400, f"The search field '{match[1]}' is not supported. Supported: {', '.join(allowed)}.")
        value = next(v for v in match.groups()[1:] if v is not None)
        terms.append((field, value))
        rest = rest.replace(match[0], "", 1)
    if rest.strip():
        raise ApiError(400, f"Cannot parse the search query near '{rest.strip()}': use field:value terms.")
    return terms


def register(sim: Simulator) -> None:
    router, af = sim.router, sim.af
    register_attribute_listings(sim)

    def database(request: Request) -> str:
        web_id = request.arg("databaseWebId")
        if not web_id:
            raise ApiError(400, "The 'databaseWebId' parameter is required.")
        return web_id

    def listing(request: Request, path: str, params: list[tuple[str, str]], paged: bool = True) -> Response:
        names = ("startindex", "maxcount", "selectedfields") if paged else ()
        passed = [(k, v) for k, v in request.query if k.lower() in names]
        sub = Request(
            "GET", path, [*params, *passed], request.headers, client=request.client, base_url=request.base_url
        )
        sub.user = request.user
        return sim.router.dispatch(sub)

    def element_params(query: str) -> list[tuple[str, str]]:
        return [(ELEMENT_FIELDS[f], v) for f, v in parse(query, tuple(ELEMENT_FIELDS))]

    @router.route("GET", "/elements/search")
    def elements(request: Request) -> Response:
        params = [("searchFullHierarchy", "true"), *element_params(request.arg("query") or "")]
        return listing(request, f"/assetdatabases/{database(request)}/elements", params)

    @router.route("GET", "/eventframes/search")
    def frames(request: Request) -> Response:
        params: list[tuple[str, str]] = []
        start = end = None
        for field, value in parse(request.arg("query") or "", (*FRAME_FIELDS, "start", "end")):
            if field == "start":
                start = value.lstrip(">=")
            elif field == "end":
                end = value.lstrip("<=")
            else:
                params.append((FRAME_FIELDS[field], value))
        if start is None and end is None:
            params.append(("searchMode", "None"))
        else:  # frames active in [start, end]
            params += [("startTime", start or "*-100y"), ("endTime", end or "*"), ("searchMode", "Overlapped")]
        return listing(request, f"/assetdatabases/{database(request)}/eventframes", params)

    @router.route("GET", "/attributes/search")
    def attributes(request: Request) -> Any:
        check_max_count(sim, request)
        terms = parse(request.arg("query") or "", ATTRIBUTE_FIELDS)
        scope = request.arg("databaseWebId")
        owner = request.arg("elementWebId")
        element_terms = [term for t, q in terms if t == "element" for term in element_params(q)]
        if owner:
            candidates = [af.resolve(owner)]
            candidates += af.descendants(candidates[0]) if element_terms else []
        elif scope:
            candidates = []
        else:
            raise ApiError(400, "The 'databaseWebId' or 'elementWebId' parameter is required.")
        if scope and not owner:
            every = [("searchFullHierarchy", "true"), ("maxCount", str(sim.config.max_returned_items_per_call))]
            sub = listing(request, f"/assetdatabases/{scope}/elements", [*every, *element_terms], paged=False)
            if sub.status != 200:
                return sub
            found = {e["Id"] for e in sub.body["Items"]}
            candidates = [x for x in [0, *af.descendants(0)] if str(af.guid(x)) in found]
        name = next((v for f, v in terms if f == "name"), None)
        category = next((v.upper() for f, v in terms if f == "category"), None)
        value_type = next((v.upper() for f, v in terms if f == "type"), None)
        name_ok = wildcard(name)
        refs = [
            af.attribute(x, n)
            for x in candidates
            for n, spec in enumerate(af.attributes(x))
            if (name_ok is None or name_ok(spec.name))
            and (category is None or category in {c.upper() for c in spec.categories})
            and (value_type is None or spec.type.upper() == value_type)
        ]
        return items_body(request, refs, lambda ref: attribute_json(sim, ref, request.link))


def register_attribute_listings(sim: Simulator) -> None:
    """`/assetdatabases/{id}/elementattributes`, `/elements/{id}/elementattributes` (FindElementAttributes)
    and the event-frame forms: the attributes of the elements (frames) an element (frame) listing with
    the `element*` (`eventFrame*`) filters returns, filtered by the `attribute*` ones."""
    router, af, model = sim.router, sim.af, sim.event_frames

    def owner_params(request: Request, prefix: str, names: dict[str, str]) -> list[tuple[str, str]]:
        out = [(target, request.arg(prefix + source) or "") for source, target in names.items()]
        passed = ("searchFullHierarchy", "startTime", "endTime", "searchMode")
        out += [(name, request.arg(name) or "") for name in passed]
        return [(k, v) for k, v in out if v] + [("maxCount", str(sim.config.max_returned_items_per_call))]

    def attribute_filter(request: Request) -> Any:
        name_ok = wildcard(request.arg("attributeNameFilter"))
        description_ok = wildcard(request.arg("attributeDescriptionFilter"))
        category = (request.arg("attributeCategory") or "").upper()
        value_type = (request.arg("attributeType") or "").upper()
        return lambda s: (
            (name_ok is None or name_ok(s.name))
            and (description_ok is None or description_ok(s.description))
            and (not category or category in {c.upper() for c in s.categories})
            and (not value_type or s.type.upper() == value_type)
        )

    def answer(request: Request, path: str, params: list[tuple[str, str]], refs_of: Any) -> Any:
        check_max_count(sim, request)
        sub = Request("GET", path, params, request.headers, client=request.client, base_url=request.base_url)
        sub.user = request.user
        owners = sim.router.dispatch(sub)
        if owners.status != 200:
            return owners
        keep = attribute_filter(request)
        refs = [ref for owner in owners.body["Items"] for ref in refs_of(owner["WebId"]) if keep(ref.spec)]
        return items_body(request, refs, lambda ref: attribute_json(sim, ref, request.link))

    element_names = {"NameFilter": "nameFilter", "DescriptionFilter": "descriptionFilter",
                     "Category": "categoryName", "Template": "templateName", "Type": "elementType"}  # fmt: skip
    frame_names = {"NameFilter": "nameFilter", "Category": "categoryName", "Template": "templateName"}

    def element_refs(web_id: str) -> list[Any]:
        x = af.resolve(web_id)
        return [af.attribute(x, n) for n in range(len(af.attributes(x)))]

    def frame_refs(web_id: str) -> list[Any]:
        frame = model.resolve(web_id)
        return [model.attribute(frame, n) for n in range(len(model.attributes(frame)))]

    @router.route("GET", "/assetdatabases/{web_id}/elementattributes")
    def database_element_attributes(request: Request, web_id: str) -> Any:
        params = owner_params(request, "element", element_names)
        return answer(request, f"/assetdatabases/{web_id}/elements", params, element_refs)

    @router.route("GET", "/elements/{web_id}/elementattributes")
    def element_attributes(request: Request, web_id: str) -> Any:
        params = owner_params(request, "element", element_names)
        return answer(request, f"/elements/{web_id}/elements", params, element_refs)

    @router.route("GET", "/assetdatabases/{web_id}/eventframeattributes")
    def database_frame_attributes(request: Request, web_id: str) -> Any:
        params = owner_params(request, "eventFrame", frame_names)
        return answer(request, f"/assetdatabases/{web_id}/eventframes", params, frame_refs)

    @router.route("GET", "/eventframes/{web_id}/eventframeattributes")
    def frame_attributes(request: Request, web_id: str) -> Any:
        params = owner_params(request, "eventFrame", frame_names)
        return answer(request, f"/eventframes/{web_id}/eventframes", params, frame_refs)
