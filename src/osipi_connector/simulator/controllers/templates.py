"""Element templates' attribute templates and categories, event frames' categories and annotations
(`/elementtemplates/{id}/attributetemplates|categories`, `/attributetemplates/{id}[/...]`,
`/eventframes/{id}/categories|annotations`).

An element template's attribute templates are the attributes its elements carry from it (read off the
first element built on it); an event-frame template's, those of the first frame built on it.
"""

from __future__ import annotations

import functools
import uuid
from typing import TYPE_CHECKING, Any

from osipi_connector.piwebapi.pitime import format_ticks
from osipi_connector.simulator.af import (
    ATTRIBUTE_CATEGORIES,
    ATTRIBUTE_CATEGORY_INDEX,
    CATEGORIES,
    CATEGORY_INDEX,
    TEMPLATE_INDEX,
    TEMPLATES,
    AttrSpec,
)
from osipi_connector.simulator.controllers.assets import UNIT_NAMES, category_json
from osipi_connector.simulator.controllers.owners import resolvers
from osipi_connector.simulator.http import ApiError, Request, select_fields

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

POINT_PATTERN = "\\\\%Server%\\%Element%.%Attribute%"
FRAME_SCAN = 10_000  # event-frame slots searched for the first frame of a template
STRIDE = 256  # attribute-template GUID index: template * STRIDE + attribute number


def register(sim: Simulator) -> None:
    router, af, ids = sim.router, sim.af, sim.ids
    owners = resolvers(sim)

    @functools.cache
    def defined(t: int) -> list[AttrSpec]:
        """The attributes template `t` defines, from the first element (event frame) built on it."""
        name = TEMPLATES[t].name
        if TEMPLATES[t].instance_type == "EventFrame":
            now = sim.now_ticks()
            for slot in range(FRAME_SCAN):
                frame = sim.event_frames.frame(slot, now)
                if frame is not None and frame.kind.template == name:
                    return [s for s in sim.event_frames.attributes(frame) if s.template == name]
            return []
        first = next((x for x in range(af.total) if int(af.template_codes[x]) == t), None)
        return [] if first is None else [s for s in af.attributes(first) if s.template == name]

    def template_json(request: Request, t: int, n: int, spec: AttrSpec) -> dict:
        tpl, link = TEMPLATES[t], request.link
        path = f"{af.database_path}\\ElementTemplates[{tpl.name}]|{spec.name}"
        guids = (ids.guid("template", t), ids.guid("attributetemplate", t * STRIDE + n))
        w = ids.encode("ATE", guids, path=path[2:])
        return {
            "WebId": w,
            "Id": str(guids[1]),
            "Name": spec.name,
            "Description": spec.description,
            "Path": path,
            "Type": spec.type,
            "TypeQualifier": spec.type_qualifier,
            "DefaultUnitsName": UNIT_NAMES.get(spec.units, spec.units),
            "DefaultValue": spec.value,
            # a PI Point attribute's template names its point by substitution, as AF templates do
            "DataReferencePlugIn": "PI Point" if spec.point_index is not None else "",
            "ConfigString": POINT_PATTERN if spec.point_index is not None else "",
            "IsConfigurationItem": True,
            "IsExcluded": spec.excluded,
            "IsHidden": spec.hidden,
            "IsManualDataEntry": False,
            "HasChildren": False,
            "CategoryNames": list(spec.categories),
            "TraitName": "",
            "DefaultUnitsNameAbbreviation": spec.units,
            "Links": {
                "Self": link(f"/attributetemplates/{w}"),
                "AttributeTemplates": link(f"/attributetemplates/{w}/attributetemplates"),
                "ElementTemplate": link(f"/elementtemplates/{af.template_webid(t)}"),
                "Categories": link(f"/attributetemplates/{w}/categories"),
            },
        }

    def resolve_attribute_template(web_id: str) -> tuple[int, int, AttrSpec]:
        index = ids.resolve(web_id, "ATE", "attributetemplate", position=1)
        t, n = divmod(index, STRIDE)
        specs = defined(t) if t < len(TEMPLATES) else []
        if n >= len(specs) or ids.resolve(web_id, "ATE", "template") != t:
            raise ApiError(404, f"The specified attribute template was not found. WebID: '{web_id}'.")
        return t, n, specs[n]

    def fields(request: Request, body: Any) -> Any:
        return select_fields(body, request.arg("selectedFields"))

    @router.route("GET", "/elementtemplates/{web_id}/attributetemplates")
    def attribute_templates(request: Request, web_id: str) -> Any:
        t = owners["elementtemplates"](web_id)
        assert isinstance(t, int)
        items = [template_json(request, t, n, s) for n, s in enumerate(defined(t))]
        return fields(request, {"Links": {}, "Items": items})

    @router.route("GET", "/attributetemplates/{web_id}")
    def get_attribute_template(request: Request, web_id: str) -> Any:
        return fields(request, template_json(request, *resolve_attribute_template(web_id)))

    @router.route("GET", "/attributetemplates/{web_id}/attributetemplates")
    def child_attribute_templates(request: Request, web_id: str) -> Any:
        resolve_attribute_template(web_id)
        return fields(request, {"Links": {}, "Items": []})

    @router.route("GET", "/attributetemplates/{web_id}/categories")
    def attribute_template_categories(request: Request, web_id: str) -> Any:
        return attribute_categories(request, resolve_attribute_template(web_id)[2].categories)

    # --- attribute categories ------------------------------------------------------------------------
    def attribute_category_path(name: str) -> str:
        return f"{af.database_path}\\CategoriesAttribute[{name}]"

    def attribute_category_json(request: Request, c: int) -> dict:
        name, description = ATTRIBUTE_CATEGORIES[c]
        path = attribute_category_path(name)
        w, link = ids.encode("AC", (ids.guid("attributecategory", c),), path=path[2:]), request.link
        return {
            "WebId": w,
            "Id": str(ids.guid("attributecategory", c)),
            "Name": name,
            "Description": description,
            "Path": path,
            "Links": {
                "Self": link(f"/attributecategories/{w}"),
                "Database": link(f"/assetdatabases/{af.database_webid}"),
                "Security": link(f"/attributecategories/{w}/security"),
                "SecurityEntries": link(f"/attributecategories/{w}/securityentries"),
            },
        }

    def attribute_categories(request: Request, names: tuple[str, ...]) -> Any:
        items = [attribute_category_json(request, ATTRIBUTE_CATEGORY_INDEX[n.upper()]) for n in names]
        return fields(request, {"Links": {}, "Items": items})

    @router.route("GET", "/assetdatabases/{web_id}/attributecategories")
    def database_attribute_categories(request: Request, web_id: str) -> Any:
        owners["assetdatabases"](web_id)
        return attribute_categories(request, tuple(name for name, _ in ATTRIBUTE_CATEGORIES))

    @router.route("GET", "/attributecategories/{web_id}")
    def get_attribute_category(request: Request, web_id: str) -> Any:
        c = owners["attributecategories"](web_id)
        assert isinstance(c, int)
        return fields(request, attribute_category_json(request, c))

    @router.route("GET", "/attributecategories")
    def attribute_category_by_path(request: Request) -> Any:
        path = by_path(request)
        c = next(
            (c for c, (n, _) in enumerate(ATTRIBUTE_CATEGORIES) if attribute_category_path(n).upper() == path.upper()),
            None,
        )
        if c is None:
            raise ApiError(404, f"The specified attribute category was not found. Path: '{path}'.")
        return fields(request, attribute_category_json(request, c))

    @router.route("GET", "/attributes/{web_id}/categories")
    def categories_of_attribute(request: Request, web_id: str) -> Any:
        return attribute_categories(request, sim.af.resolve_attribute(web_id).spec.categories)

    def categories(request: Request, names: tuple[str, ...]) -> Any:
        items = [category_json(sim, request, CATEGORY_INDEX[n.upper()]) for n in names]
        return fields(request, {"Links": {}, "Items": items})

    @router.route("GET", "/elementtemplates/{web_id}/categories")
    def template_categories(request: Request, web_id: str) -> Any:
        t = owners["elementtemplates"](web_id)
        assert isinstance(t, int)
        return categories(request, TEMPLATES[t].categories)

    @router.route("GET", "/eventframes/{web_id}/categories")
    def frame_categories(request: Request, web_id: str) -> Any:
        frame = sim.event_frames.resolve(web_id)
        return categories(request, TEMPLATES[TEMPLATE_INDEX[frame.kind.template]].categories)

    @router.route("GET", "/elementtemplates")
    def template_by_path(request: Request) -> Any:
        path = by_path(request)
        t = next((t for t in range(len(TEMPLATES)) if template_path(t).upper() == path.upper()), None)
        if t is None:
            raise ApiError(404, f"The specified element template was not found. Path: '{path}'.")
        sub = Request("GET", f"/elementtemplates/{af.template_webid(t)}", request.query, base_url=request.base_url)
        return sim.router.dispatch(sub)

    @router.route("GET", "/elementcategories")
    def category_by_path(request: Request) -> Any:
        path = by_path(request)
        c = next((c for c, (name, _) in enumerate(CATEGORIES) if category_path(name).upper() == path.upper()), None)
        if c is None:
            raise ApiError(404, f"The specified element category was not found. Path: '{path}'.")
        return fields(request, category_json(sim, request, c))

    @router.route("GET", "/attributetemplates")
    def attribute_template_by_path(request: Request) -> Any:
        path = by_path(request)
        owner, _, name = path.rpartition("|")
        t = next((t for t in range(len(TEMPLATES)) if template_path(t).upper() == owner.upper()), None)
        specs = defined(t) if t is not None else []
        n = next((n for n, s in enumerate(specs) if s.name.upper() == name.upper()), None)
        if t is None or n is None:
            raise ApiError(404, f"The specified attribute template was not found. Path: '{path}'.")
        return fields(request, template_json(request, t, n, specs[n]))

    def by_path(request: Request) -> str:
        path = request.arg("path")
        if not path:
            raise ApiError(400, "The 'path' parameter is required.")
        return path

    def template_path(t: int) -> str:
        return f"{af.database_path}\\ElementTemplates[{TEMPLATES[t].name}]"

    def category_path(name: str) -> str:
        return f"{af.database_path}\\CategoriesElement[{name}]"

    @router.route("GET", "/eventframes/{web_id}/annotations/{annotation_id}")
    def annotation(request: Request, web_id: str, annotation_id: str) -> Any:
        found = [a for a in annotations(request, web_id)["Items"] if a["Id"] == annotation_id.lower()]
        if not found:
            raise ApiError(404, f"The annotation '{annotation_id}' was not found.")
        return fields(request, found[0])

    @router.route("GET", "/eventframes/{web_id}/annotations")
    def annotations(request: Request, web_id: str) -> Any:
        """An annotated (closed) frame carries one annotation, written when it closed."""
        frame = sim.event_frames.resolve(web_id)
        items = []
        if frame.annotated:
            written = format_ticks(frame.end)
            items.append(
                {
                    "Id": str(uuid.uuid5(ids.guid("eventframe", frame.slot), "annotation")),
                    "Name": "Operator note",
                    "Description": "",
                    "Value": f"{frame.kind.template} {frame.name} reviewed",
                    "Creator": "PLANT\\operator",
                    "CreationDate": written,
                    "Modifier": "PLANT\\operator",
                    "ModifyDate": written,
                    "Links": {"Owner": request.link(f"/eventframes/{web_id}")},
                }
            )
        return fields(request, {"Links": {}, "Items": items})
