"""Asset Framework: asset servers, databases, elements, attributes, element templates and categories.

Element lists follow PI's rules: immediate children unless `searchFullHierarchy=true` (then a flat
list of all descendants), never embedded children, sorted (Name by default) so paging is stable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from osipi_connector.piwebapi.pitime import format_ticks
from osipi_connector.simulator.af import (
    CATEGORIES,
    CATEGORY_INDEX,
    TEMPLATE_INDEX,
    TEMPLATES,
    AttributeRef,
    template_chain,
    wildcard,
)
from osipi_connector.simulator.http import ApiError, Request, paginate, select_fields

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

SORT_ORDERS = ("Ascending", "Descending")
ELEMENT_SORT_FIELDS = ("Name", "Description", "TemplateName", "Type", "ID")
ATTRIBUTE_SORT_FIELDS = ("Name", "Description", "Type", "ID")
ELEMENT_TYPES = ("Any", "Other", "Node", "Measurement", "Flowsheet", "Transfer", "Boundary", "PIPoint", "Network")
VALUE_TYPES = (
    "Boolean", "Byte", "DateTime", "Double", "Int16", "Int32", "Int64", "Single", "String", "EnumerationValue",
    "Guid", "TimeSpan", "Object",
)  # fmt: skip
SERVER_VERSION = "2.10.11.2717"
UNIT_NAMES = {
    "°C": "degree Celsius", "bar": "bar", "m3/h": "cubic meter per hour", "%": "percent", "kW": "kilowatt",
    "pH": "pH", "count": "count", "m3": "cubic meter", "mm": "millimeter", "°": "degree", "t": "tonne",
}  # fmt: skip


# --- helpers shared with the event-frame controller -----------------------------------------------------
def attribute_json(sim: Simulator, ref: AttributeRef, link: Callable[[str], str]) -> dict:
    """PI Web API's PIAttribute object."""
    s, w = ref.spec, ref.web_id
    links = {"Self": link(f"/attributes/{w}"), "Attributes": link(f"/attributes/{w}/attributes")}
    links[ref.owner_kind] = link(ref.owner_link)
    for name, action in (("InterpolatedData", "interpolated"), ("RecordedData", "recorded"), ("PlotData", "plot")):
        links[name] = link(f"/streams/{w}/{action}")
    links |= {
        "SummaryData": link(f"/streams/{w}/summary"),
        "Value": link(f"/streams/{w}/value"),
        "EndValue": link(f"/streams/{w}/end"),
        "Categories": link(f"/attributes/{w}/categories"),
    }
    if s.point_index is not None:
        links["Point"] = link(f"/points/{sim.points.webid(s.point_index)}")
    return {
        "WebId": w,
        "Id": str(ref.guid),
        "Name": s.name,
        "Description": s.description,
        "Path": ref.path,
        "Type": s.type,
        "TypeQualifier": s.type_qualifier,
        "DefaultUnitsName": UNIT_NAMES.get(s.units, s.units),
        "DataReferencePlugIn": "PI Point" if s.point_index is not None else "",
        "ConfigString": sim.points.path(s.point_index) if s.point_index is not None else "",
        "IsConfigurationItem": s.point_index is None,
        "IsExcluded": s.excluded,
        "IsHidden": s.hidden,
        "IsManualDataEntry": False,
        "HasChildren": False,
        "CategoryNames": list(s.categories),
        "Step": s.step,
        "TraitName": "",
        "DefaultUnitsNameAbbreviation": s.units,
        "Links": links,
    }


def category_json(sim: Simulator, request: Request, c: int) -> dict:
    """PI Web API's PIElementCategory object."""
    af = sim.af
    name, description = CATEGORIES[c]
    w, link = af.category_webid(c), request.link
    return {
        "WebId": w,
        "Id": str(sim.ids.guid("category", c)),
        "Name": name,
        "Description": description,
        "Path": f"{af.database_path}\\CategoriesElement[{name}]",
        "Links": {
            "Self": link(f"/elementcategories/{w}"),
            "Database": link(f"/assetdatabases/{af.database_webid}"),
            "Security": link(f"/elementcategories/{w}/security"),
            "SecurityEntries": link(f"/elementcategories/{w}/securityentries"),
        },
    }


def check_max_count(sim: Simulator, request: Request) -> None:
    """PI answers 400 when maxCount exceeds the server's MaxReturnedItemsPerCall."""
    cap = sim.config.max_returned_items_per_call
    if request.int_arg("maxCount", 1000, minimum=1) > cap:
        raise ApiError(400, f"Parameter 'maxCount' is greater than the maximum allowed ({cap}).")


def items_body(request: Request, keys: Sequence[Any], render: Callable[[Any], dict]) -> dict:
    """A paged `{"Links", "Items"}` collection, rendering only the requested page."""
    page, links = paginate(request, list(keys))
    return select_fields({"Links": links, "Items": [render(k) for k in page]}, request.arg("selectedFields"))


def descending(request: Request) -> bool:
    return request.enum_arg("sortOrder", "Ascending", SORT_ORDERS) == "Descending"


def optional_bool(request: Request, name: str) -> bool | None:
    return request.bool_arg(name, False) if request.arg(name) else None


def resolve_database(sim: Simulator, web_id: str) -> None:
    if sim.ids.resolve(web_id, "RD", "database", path=sim.af.database_path[2:]) != 0:
        raise ApiError(404, f"The specified asset database was not found. WebID: '{web_id}'.")


def element_json(sim: Simulator, x: int, request: Request) -> dict:
    """PI Web API's PIElement object (children are never embedded)."""
    af, link = sim.af, request.link
    w = af.webid(x)
    parent = af.parent(x)
    template = af.template(x)
    links = {
        "Self": link(f"/elements/{w}"),
        "Analyses": link(f"/elements/{w}/analyses"),
        "Attributes": link(f"/elements/{w}/attributes"),
        "Elements": link(f"/elements/{w}/elements"),
        "Database": link(f"/assetdatabases/{af.database_webid}"),
    }
    if parent is not None:
        links["Parent"] = link(f"/elements/{af.webid(parent)}")
    links |= {
        "Template": link(f"/elementtemplates/{af.template_webid(TEMPLATE_INDEX[template.name])}"),
        "Categories": link(f"/elements/{w}/categories"),
        "DefaultAttribute": link(f"/attributes/{af.default_attribute_webid(x)}"),
        "EventFrames": link(f"/elements/{w}/eventframes"),
    }
    links |= stream_set_links(w, link)
    links |= {"Security": link(f"/elements/{w}/security"), "SecurityEntries": link(f"/elements/{w}/securityentries")}
    return {
        "WebId": w,
        "Id": str(af.guid(x)),
        "Name": af.name(x),
        "Description": af.description(x),
        "Path": af.path(x),
        "TemplateName": template.name,
        "HasChildren": bool(af.children(x)),
        "CategoryNames": list(af.categories(x)),
        "ExtendedProperties": {},
        "Links": links,
    }


def stream_set_links(web_id: str, link: Callable[[str], str]) -> dict[str, str]:
    """The data links of an element or event frame (its attributes as a stream set)."""
    actions = (("InterpolatedData", "interpolated"), ("RecordedData", "recorded"), ("PlotData", "plot"))
    out = {name: link(f"/streamsets/{web_id}/{action}") for name, action in actions}
    out["SummaryData"] = link(f"/streamsets/{web_id}/summary")
    out["Value"] = link(f"/streamsets/{web_id}/value")
    out["EndValue"] = link(f"/streamsets/{web_id}/end")
    return out


def attribute_filter(request: Request) -> Callable[[AttributeRef], bool]:
    """The attribute filters an owner's attribute list and stream set share: nameFilter,
    categoryName, templateName, valueType, showExcluded, showHidden (400 on bad values)."""
    name_ok = wildcard(request.arg("nameFilter"))
    category = (request.arg("categoryName") or "").upper()
    template = (request.arg("templateName") or "").upper()
    value_type = request.arg("valueType")
    if value_type:
        value_type = request.enum_arg("valueType", "", VALUE_TYPES)
    request.bool_arg("searchFullHierarchy", False)  # no child attributes here: validated, nothing to add
    show_excluded = request.bool_arg("showExcluded", False)
    show_hidden = request.bool_arg("showHidden", False)

    def keep(ref: AttributeRef) -> bool:
        s = ref.spec
        return (
            (name_ok is None or name_ok(s.name))
            and (not category or category in {c.upper() for c in s.categories})
            and (not template or (bool(s.template) and template in {t.upper() for t in ref.owner_templates}))
            and (not value_type or s.type == value_type)
            and (show_excluded or not s.excluded)
            and (show_hidden or not s.hidden)
        )

    return keep


def attributes_body(sim: Simulator, request: Request, refs: Sequence[AttributeRef]) -> dict:
    """`GET .../attributes` over an owner's attributes: filters, sort, paging."""
    check_max_count(sim, request)
    keep = attribute_filter(request)
    sort_field = request.enum_arg("sortField", "Name", ATTRIBUTE_SORT_FIELDS)

    def key(ref: AttributeRef) -> tuple[str, str]:
        s = ref.spec
        field = {"Name": s.name, "Description": s.description, "Type": s.type, "ID": str(ref.guid)}[sort_field]
        return field.upper(), s.name

    chosen = sorted(filter(keep, refs), key=key, reverse=descending(request))
    return items_body(request, chosen, lambda ref: attribute_json(sim, ref, request.link))


def register(sim: Simulator) -> None:
    router = sim.router
    af = sim.af

    # --- asset servers and databases -----------------------------------------------------------------
    def server_json(request: Request) -> dict:
        w, link = af.server_webid, request.link
        return {
            "WebId": w,
            "Id": str(af.server_guid),
            "Name": af.server_name,
            "Description": "Simulated PI AF Server",
            "Path": f"\\\\{af.server_name}",
            "IsConnected": True,
            "ServerVersion": SERVER_VERSION,
            "ServerTime": format_ticks(sim.now_ticks()),
            "ExtendedProperties": {},
            "Links": {
                "Self": link(f"/assetservers/{w}"),
                "Databases": link(f"/assetservers/{w}/assetdatabases"),
                "NotificationContactTemplates": link(f"/assetservers/{w}/notificationcontacttemplates"),
                "SecurityIdentities": link(f"/assetservers/{w}/securityidentities"),
                "SecurityMappings": link(f"/assetservers/{w}/securitymappings"),
                "TimeRules": link(f"/assetservers/{w}/timerules"),
                "UnitClasses": link(f"/assetservers/{w}/unitclasses"),
                "Security": link(f"/assetservers/{w}/security"),
                "SecurityEntries": link(f"/assetservers/{w}/securityentries"),
            },
        }

    def database_json(request: Request) -> dict:
        w, link = af.database_webid, request.link
        sections = ("Elements", "ElementTemplates", "EventFrames", "ElementCategories", "AttributeCategories")
        links = {"Self": link(f"/assetdatabases/{w}")}
        links |= {name: link(f"/assetdatabases/{w}/{name.lower()}") for name in sections}
        links |= {
            "AssetServer": link(f"/assetservers/{af.server_webid}"),
            "EnumerationSets": link(f"/assetdatabases/{w}/enumerationsets"),
            "Tables": link(f"/assetdatabases/{w}/tables"),
            "Security": link(f"/assetdatabases/{w}/security"),
            "SecurityEntries": link(f"/assetdatabases/{w}/securityentries"),
        }
        return {
            "WebId": w,
            "Id": str(af.database_guid),
            "Name": af.database_name,
            "Description": "Simulated plant database",
            "Path": af.database_path,
            "ExtendedProperties": {
                "DefaultPIServer": {"Value": sim.points.server_name},
                "DefaultPIServerID": {"Value": str(sim.points.server_guid)},
            },
            "Links": links,
        }

    def check_server(web_id: str) -> None:
        if sim.ids.resolve(web_id, "RS", "assetserver", path=sim.af.server_name) != 0:
            raise ApiError(404, f"The specified asset server was not found. WebID: '{web_id}'.")

    def fields(request: Request, body: dict) -> dict:
        return select_fields(body, request.arg("selectedFields"))

    @router.route("GET", "/assetservers")
    def list_servers(request: Request) -> dict:
        wanted = request.arg("name") or request.arg("path")
        if wanted is not None:  # GetByName / GetByPath
            if wanted.lstrip("\\").upper() != af.server_name.upper():
                raise ApiError(404, f"PI AF Server '{wanted}' was not found.")
            return fields(request, server_json(request))
        return fields(request, {"Links": {}, "Items": [server_json(request)]})

    @router.route("GET", "/assetservers/{web_id}")
    def get_server(request: Request, web_id: str) -> dict:
        check_server(web_id)
        return fields(request, server_json(request))

    @router.route("GET", "/assetservers/{web_id}/assetdatabases")
    def list_databases(request: Request, web_id: str) -> dict:
        check_server(web_id)
        return fields(request, {"Links": {}, "Items": [database_json(request)]})

    @router.route("GET", "/assetdatabases")
    def database_by_path(request: Request) -> dict:
        path = request.arg("path")
        if not path:
            raise ApiError(400, "The 'path' parameter is required.")
        if path.upper() != af.database_path.upper():
            raise ApiError(404, f"PI AF Database '{path}' was not found.")
        return fields(request, database_json(request))

    @router.route("GET", "/assetdatabases/{web_id}")
    def get_database(request: Request, web_id: str) -> dict:
        resolve_database(sim, web_id)
        return fields(request, database_json(request))

    # --- elements ------------------------------------------------------------------------------------
    def element_list(request: Request, root: int | None) -> dict:
        """Children of `root` (None: the database), or all descendants with searchFullHierarchy."""
        check_max_count(sim, request)
        full = request.bool_arg("searchFullHierarchy", False)
        if root is None:
            candidates = [0, *af.descendants(0)] if full else [0]
        else:
            candidates = af.descendants(root) if full else af.children(root)
        element_type = request.enum_arg("elementType", "Any", ELEMENT_TYPES)
        if element_type not in ("Any", "Other"):
            candidates = []
        sort_field = request.enum_arg("sortField", "Name", ELEMENT_SORT_FIELDS)
        keep = element_filter(request)
        key = element_key(sort_field)
        chosen = sorted((x for x in candidates if keep(x)), key=key, reverse=descending(request))
        return items_body(request, chosen, lambda x: element_json(sim, x, request))

    def element_filter(request: Request) -> Callable[[int], bool]:
        name_ok = wildcard(request.arg("nameFilter"))
        description_ok = wildcard(request.arg("descriptionFilter"))
        category = (request.arg("categoryName") or "").upper()
        template = (request.arg("templateName") or "").upper()
        chains = {i: {n.upper() for n in template_chain(t.name)} for i, t in enumerate(TEMPLATES)}

        def keep(x: int) -> bool:
            return (
                (name_ok is None or name_ok(af.name(x)))
                and (description_ok is None or description_ok(af.description(x)))
                and (not category or category in {c.upper() for c in af.categories(x)})
                and (not template or template in chains[int(af.template_codes[x])])
            )

        return keep

    def element_key(sort_field: str) -> Callable[[int], tuple[str, int]]:
        getters: dict[str, Callable[[int], str]] = {
            "Name": af.name,
            "Description": af.description,
            "TemplateName": lambda x: af.template(x).name,
            "Type": lambda x: af.template(x).name,
            "ID": lambda x: str(af.guid(x)),
        }
        get = getters[sort_field]
        return lambda x: (get(x).upper(), x)

    @router.route("GET", "/assetdatabases/{web_id}/elements")
    def database_elements(request: Request, web_id: str) -> dict:
        resolve_database(sim, web_id)
        return element_list(request, None)

    @router.route("GET", "/elements")
    def element_by_path(request: Request) -> dict:
        path = request.arg("path")
        if not path:
            raise ApiError(400, "The 'path' parameter is required.")
        x = af.find(path)
        if x is None:
            raise ApiError(404, f"The specified element was not found. Path: '{path}'.")
        return fields(request, element_json(sim, x, request))

    @router.route("GET", "/elements/{web_id}")
    def get_element(request: Request, web_id: str) -> dict:
        return fields(request, element_json(sim, af.resolve(web_id), request))

    @router.route("GET", "/elements/{web_id}/elements")
    def child_elements(request: Request, web_id: str) -> dict:
        return element_list(request, af.resolve(web_id))

    @router.route("GET", "/elements/{web_id}/attributes")
    def element_attributes(request: Request, web_id: str) -> dict:
        x = af.resolve(web_id)
        refs = [af.attribute(x, n) for n in range(len(af.attributes(x)))]
        return attributes_body(sim, request, refs)

    @router.route("GET", "/elements/{web_id}/categories")
    def element_categories_of(request: Request, web_id: str) -> dict:
        names = af.categories(af.resolve(web_id))
        items = [category_json(sim, request, CATEGORY_INDEX[n.upper()]) for n in names]
        return fields(request, {"Links": {}, "Items": items})

    # --- attributes ----------------------------------------------------------------------------------
    @router.route("GET", "/attributes")
    def attribute_by_path(request: Request) -> dict:
        path = request.arg("path")
        if not path:
            raise ApiError(400, "The 'path' parameter is required.")
        ref = af.find_attribute(path)
        if ref is None:
            raise ApiError(404, f"The specified attribute was not found. Path: '{path}'.")
        return fields(request, attribute_json(sim, ref, request.link))

    @router.route("GET", "/attributes/{web_id}")
    def get_attribute(request: Request, web_id: str) -> dict:
        return fields(request, attribute_json(sim, af.resolve_attribute(web_id), request.link))

    @router.route("GET", "/attributes/{web_id}/attributes")
    def child_attributes(request: Request, web_id: str) -> dict:
        af.resolve_attribute(web_id)
        return attributes_body(sim, request, [])

    # --- templates and categories --------------------------------------------------------------------
    def template_json(request: Request, t: int) -> dict:
        tpl, link = TEMPLATES[t], request.link
        w = af.template_webid(t)
        links = {
            "Self": link(f"/elementtemplates/{w}"),
            "AnalysisTemplates": link(f"/elementtemplates/{w}/analysistemplates"),
            "AttributeTemplates": link(f"/elementtemplates/{w}/attributetemplates"),
            "Database": link(f"/assetdatabases/{af.database_webid}"),
            "Categories": link(f"/elementtemplates/{w}/categories"),
        }
        if tpl.base:
            links["BaseTemplate"] = link(f"/elementtemplates/{af.template_webid(TEMPLATE_INDEX[tpl.base])}")
        return {
            "WebId": w,
            "Id": str(sim.ids.guid("template", t)),
            "Name": tpl.name,
            "Description": tpl.description,
            "Path": f"{af.database_path}\\ElementTemplates[{tpl.name}]",
            "AllowElementToExtend": True,
            "BaseTemplate": tpl.base,
            "InstanceType": tpl.instance_type,
            "NamingPattern": tpl.naming_pattern,
            "CategoryNames": list(tpl.categories),
            "ExtendedProperties": {},
            "Severity": tpl.severity,
            "CanBeAcknowledged": tpl.can_be_acknowledged,
            "Links": links,
        }

    def by_name(request: Request, names: Sequence[str]) -> list[int]:
        check_max_count(sim, request)
        return sorted(range(len(names)), key=lambda i: names[i].upper(), reverse=descending(request))

    @router.route("GET", "/assetdatabases/{web_id}/elementtemplates")
    def list_templates(request: Request, web_id: str) -> dict:
        resolve_database(sim, web_id)
        name_ok = wildcard(request.arg("query"))
        chosen = [t for t in by_name(request, [t.name for t in TEMPLATES]) if not name_ok or name_ok(TEMPLATES[t].name)]
        return items_body(request, chosen, lambda t: template_json(request, t))

    @router.route("GET", "/assetdatabases/{web_id}/elementcategories")
    def list_categories(request: Request, web_id: str) -> dict:
        resolve_database(sim, web_id)
        chosen = by_name(request, [name for name, _ in CATEGORIES])
        return items_body(request, chosen, lambda c: category_json(sim, request, c))

    @router.route("GET", "/elementtemplates/{web_id}")
    def get_template(request: Request, web_id: str) -> dict:
        t = sim.ids.resolve(web_id, "ET", "template")
        if t >= len(TEMPLATES):
            raise ApiError(404, f"The specified element template was not found. WebID: '{web_id}'.")
        return fields(request, template_json(request, t))

    @router.route("GET", "/elementcategories/{web_id}")
    def get_category(request: Request, web_id: str) -> dict:
        c = sim.ids.resolve(web_id, "EC", "category")
        if c >= len(CATEGORIES):
            raise ApiError(404, f"The specified element category was not found. WebID: '{web_id}'.")
        return fields(request, category_json(sim, request, c))
