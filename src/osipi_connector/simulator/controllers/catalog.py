"""Analyses and analysis templates, AF tables and their data, analysis and table categories, and the AF
server's unit classes with their units (data in `simulator/catalog.py`), with PI Web API's JSON shapes:

- Analysis / AnalysisTemplate: docs.aveva.com pi-web-api-reference controllers/analysis/actions/get,
  controllers/analysistemplate/actions/get; listed by `assetdatabases/{id}/analyses|analysistemplates`,
  `elements/{id}/analyses`, `elementtemplates/{id}/analysistemplates`.
- Table / TableData: controllers/table/actions/get and getdata (`{"Columns": {name: type}, "Rows": [...]}`).
- UnitClass / Unit: controllers/unitclass/actions/get, getunits, getcanonicalunit; controllers/unit/actions/get.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from osipi_connector.simulator.af import TEMPLATE_INDEX
from osipi_connector.simulator.catalog import (
    AF_TABLES,
    ANALYSES_PER_TEMPLATE,
    ANALYSIS_CATEGORIES,
    ANALYSIS_TEMPLATES,
    FREE_ANALYSIS,
    TABLE_CATEGORIES,
    UNIT_CLASSES,
    UNIT_STRIDE,
    canonical,
)
from osipi_connector.simulator.controllers.assets import check_max_count, items_body, resolve_database
from osipi_connector.simulator.controllers.owners import resolvers
from osipi_connector.simulator.http import ApiError, Request, select_fields

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

Analysis = tuple[int | None, int]  # (ANALYSIS_TEMPLATES index or None, element index)


def register(sim: Simulator) -> None:
    router, af, ids = sim.router, sim.af, sim.ids
    owners = resolvers(sim)
    server_path = f"\\\\{af.server_name}"

    @functools.cache
    def analyses() -> tuple[Analysis, ...]:
        """The first ANALYSES_PER_TEMPLATE elements of each template's target carry one analysis of it."""
        out: list[Analysis] = []
        for a, tpl in enumerate(ANALYSIS_TEMPLATES):
            hosts = np.flatnonzero(af.template_codes == TEMPLATE_INDEX[tpl.target])[:ANALYSES_PER_TEMPLATE]
            out.extend((a, int(x)) for x in hosts)
        free = np.flatnonzero(af.template_codes == TEMPLATE_INDEX[FREE_ANALYSIS[1]])[:1]
        out.extend((None, int(x)) for x in free)
        return tuple(out)

    def fields(request: Request, body: Any) -> Any:
        return select_fields(body, request.arg("selectedFields"))

    def database_link(request: Request) -> str:
        return request.link(f"/assetdatabases/{af.database_webid}")

    # --- analysis templates ----------------------------------------------------------------------------
    def analysis_template_path(a: int) -> str:
        tpl = ANALYSIS_TEMPLATES[a]
        return f"{af.database_path}\\ElementTemplates[{tpl.target}]\\AnalysisTemplates[{tpl.name}]"

    def analysis_template_json(request: Request, a: int) -> dict:
        tpl, path = ANALYSIS_TEMPLATES[a], analysis_template_path(a)
        w = ids.encode("XT", (ids.guid("analysistemplate", a),), path=path[2:])
        return {
            "WebId": w,
            "Id": str(ids.guid("analysistemplate", a)),
            "Name": tpl.name,
            "Description": tpl.description,
            "Path": path,
            "AnalysisRulePlugInName": tpl.rule,
            "CategoryNames": list(tpl.categories),
            "CreateEnabled": True,
            "GroupId": 0,
            "HasNotificationTemplate": False,
            "HasTarget": True,
            "OutputTime": tpl.output_time,
            "TargetName": tpl.target,
            "TimeRulePlugInName": tpl.time_rule,
            "Links": {
                "Self": request.link(f"/analysistemplates/{w}"),
                "Database": database_link(request),
                "Categories": request.link(f"/analysistemplates/{w}/categories"),
                "Target": request.link(f"/elementtemplates/{af.template_webid(TEMPLATE_INDEX[tpl.target])}"),
            },
        }

    @router.route("GET", "/assetdatabases/{web_id}/analysistemplates")
    def database_analysis_templates(request: Request, web_id: str) -> Any:
        resolve_database(sim, web_id)
        check_max_count(sim, request)
        chosen = sorted(range(len(ANALYSIS_TEMPLATES)), key=lambda a: ANALYSIS_TEMPLATES[a].name.upper())
        return items_body(request, chosen, lambda a: analysis_template_json(request, a))

    @router.route("GET", "/elementtemplates/{web_id}/analysistemplates")
    def template_analysis_templates(request: Request, web_id: str) -> Any:
        t = owners["elementtemplates"](web_id)
        chosen = [a for a, tpl in enumerate(ANALYSIS_TEMPLATES) if TEMPLATE_INDEX[tpl.target] == t]
        return fields(request, {"Links": {}, "Items": [analysis_template_json(request, a) for a in chosen]})

    def resolve_analysis_template(web_id: str) -> int:
        a = ids.resolve(web_id, "XT", "analysistemplate")
        if a >= len(ANALYSIS_TEMPLATES):
            raise ApiError(404, f"The specified analysis template was not found. WebID: '{web_id}'.")
        return a

    @router.route("GET", "/analysistemplates/{web_id}")
    def get_analysis_template(request: Request, web_id: str) -> Any:
        return fields(request, analysis_template_json(request, resolve_analysis_template(web_id)))

    # --- analyses --------------------------------------------------------------------------------------
    def analysis_name(i: int) -> str:
        a, _ = analyses()[i]
        return FREE_ANALYSIS[0] if a is None else ANALYSIS_TEMPLATES[a].name

    def analysis_path(i: int) -> str:
        return f"{af.path(analyses()[i][1])}\\Analyses[{analysis_name(i)}]"

    def analysis_json(request: Request, i: int) -> dict:
        a, x = analyses()[i]
        tpl = ANALYSIS_TEMPLATES[a] if a is not None else None
        path, guid = analysis_path(i), ids.guid("analysis", i)
        w, target = ids.encode("Xs", (guid,), path=path[2:]), af.webid(x)
        rule, time_rule, categories = (
            (tpl.rule, tpl.time_rule, tpl.categories) if tpl else (FREE_ANALYSIS[2], FREE_ANALYSIS[3], FREE_ANALYSIS[4])
        )
        links = {
            "Self": request.link(f"/analyses/{w}"),
            "Target": request.link(f"/elements/{target}"),
            "Database": database_link(request),
            "Categories": request.link(f"/analyses/{w}/categories"),
        }
        if a is not None:
            links["Template"] = request.link(f"/analysistemplates/{analysis_template_json(request, a)['WebId']}")
        return {
            "WebId": w,
            "Id": str(guid),
            "Name": analysis_name(i),
            "Description": tpl.description if tpl else "Daily check of the plant's total throughput",
            "Path": path,
            "AnalysisRulePlugInName": rule,
            "AutoCreated": tpl is not None,
            "CategoryNames": list(categories),
            "GroupId": 0,
            "HasNotification": False,
            "HasTarget": True,
            "HasTemplate": tpl is not None,
            "IsConfigured": True,
            "IsTimeRuleDefinedByTemplate": tpl is not None,
            "MaximumQueueSize": 0,
            "OutputTime": tpl.output_time if tpl else "",
            "Priority": "High" if tpl is None or tpl.rule == "EventFrame" else "Normal",
            "PublishResults": False,
            "Status": "Enabled" if i % 5 else "Disabled",
            "TargetWebId": target,
            "TemplateName": tpl.name if tpl else "",
            "TimeRulePlugInName": time_rule,
            "Links": links,
        }

    def by_name(items: list[int], name: Callable[[int], str]) -> list[int]:
        return sorted(items, key=lambda i: (name(i).upper(), i))

    @router.route("GET", "/assetdatabases/{web_id}/analyses")
    def database_analyses(request: Request, web_id: str) -> Any:
        resolve_database(sim, web_id)
        check_max_count(sim, request)
        chosen = by_name(list(range(len(analyses()))), lambda i: analysis_path(i))
        return items_body(request, chosen, lambda i: analysis_json(request, i))

    @router.route("GET", "/elements/{web_id}/analyses")
    def element_analyses(request: Request, web_id: str) -> Any:
        x = af.resolve(web_id)
        chosen = by_name([i for i, (_, host) in enumerate(analyses()) if host == x], analysis_name)
        return fields(request, {"Links": {}, "Items": [analysis_json(request, i) for i in chosen]})

    def resolve_analysis(web_id: str) -> int:
        i = ids.resolve(web_id, "Xs", "analysis")
        if i >= len(analyses()):
            raise ApiError(404, f"The specified analysis was not found. WebID: '{web_id}'.")
        return i

    @router.route("GET", "/analyses/{web_id}")
    def get_analysis(request: Request, web_id: str) -> Any:
        return fields(request, analysis_json(request, resolve_analysis(web_id)))

    # --- analysis and table categories -----------------------------------------------------------------
    kinds = {  # collection -> (GUID kind, marker, folder in the database, the categories)
        "analysiscategories": ("analysiscategory", "XC", "CategoriesAnalysis", ANALYSIS_CATEGORIES),
        "tablecategories": ("tablecategory", "BC", "CategoriesTable", TABLE_CATEGORIES),
    }

    def category_json(request: Request, collection: str, c: int) -> dict:
        kind, marker, folder, table = kinds[collection]
        name, description = table[c]
        path = f"{af.database_path}\\{folder}[{name}]"
        w = ids.encode(marker, (ids.guid(kind, c),), path=path[2:])
        return {
            "WebId": w,
            "Id": str(ids.guid(kind, c)),
            "Name": name,
            "Description": description,
            "Path": path,
            "Links": {"Self": request.link(f"/{collection}/{w}"), "Database": database_link(request)},
        }

    def named_categories(request: Request, collection: str, names: tuple[str, ...]) -> Any:
        table = kinds[collection][3]
        chosen = [c for c, (name, _) in enumerate(table) if name in names]
        return fields(request, {"Links": {}, "Items": [category_json(request, collection, c) for c in chosen]})

    def category_routes(collection: str) -> None:
        kind, marker, _, table = kinds[collection]

        def listing(request: Request, web_id: str) -> Any:
            resolve_database(sim, web_id)
            return named_categories(request, collection, tuple(name for name, _ in table))

        def single(request: Request, web_id: str) -> Any:
            c = ids.resolve(web_id, marker, kind)
            if c >= len(table):
                raise ApiError(404, f"The specified category was not found. WebID: '{web_id}'.")
            return fields(request, category_json(request, collection, c))

        router.add("GET", f"/assetdatabases/{{web_id}}/{collection}", listing)
        router.add("GET", f"/{collection}/{{web_id}}", single)

    category_routes("analysiscategories")
    category_routes("tablecategories")

    @router.route("GET", "/analysistemplates/{web_id}/categories")
    def analysis_template_categories(request: Request, web_id: str) -> Any:
        tpl = ANALYSIS_TEMPLATES[resolve_analysis_template(web_id)]
        return named_categories(request, "analysiscategories", tpl.categories)

    @router.route("GET", "/analyses/{web_id}/categories")
    def analysis_categories_of(request: Request, web_id: str) -> Any:
        return named_categories(
            request, "analysiscategories", tuple(analysis_json(request, resolve_analysis(web_id))["CategoryNames"])
        )

    @router.route("GET", "/tables/{web_id}/categories")
    def table_categories_of(request: Request, web_id: str) -> Any:
        return named_categories(request, "tablecategories", AF_TABLES[resolve_table(web_id)].categories)

    # --- AF tables -------------------------------------------------------------------------------------
    def table_json(request: Request, t: int) -> dict:
        table = AF_TABLES[t]
        path = f"{af.database_path}\\Tables[{table.name}]"
        w = ids.encode("Bl", (ids.guid("table", t),), path=path[2:])
        return {
            "WebId": w,
            "Id": str(ids.guid("table", t)),
            "Name": table.name,
            "Description": table.description,
            "Path": path,
            "CategoryNames": list(table.categories),
            "TimeZone": table.time_zone,
            "ConvertToLocalTime": False,
            "Links": {
                "Self": request.link(f"/tables/{w}"),
                "Data": request.link(f"/tables/{w}/data"),
                "Categories": request.link(f"/tables/{w}/categories"),
                "Database": database_link(request),
            },
        }

    def resolve_table(web_id: str) -> int:
        t = ids.resolve(web_id, "Bl", "table")
        if t >= len(AF_TABLES):
            raise ApiError(404, f"The specified table was not found. WebID: '{web_id}'.")
        return t

    @router.route("GET", "/assetdatabases/{web_id}/tables")
    def database_tables(request: Request, web_id: str) -> Any:
        resolve_database(sim, web_id)
        check_max_count(sim, request)
        chosen = sorted(range(len(AF_TABLES)), key=lambda t: AF_TABLES[t].name.upper())
        return items_body(request, chosen, lambda t: table_json(request, t))

    @router.route("GET", "/tables/{web_id}")
    def get_table(request: Request, web_id: str) -> Any:
        return fields(request, table_json(request, resolve_table(web_id)))

    @router.route("GET", "/tables/{web_id}/data")
    def table_data(request: Request, web_id: str) -> Any:
        table = AF_TABLES[resolve_table(web_id)]
        names = [name for name, _ in table.columns]
        body = {
            "Columns": dict(table.columns),
            "Rows": [dict(zip(names, row, strict=True)) for row in table.rows],
        }
        return fields(request, body)

    # --- units of measure ------------------------------------------------------------------------------
    def unit_class_json(request: Request, c: int) -> dict:
        cls = UNIT_CLASSES[c]
        path = f"{server_path}\\UOMDatabase\\UOMClasses[{cls.name}]"
        w = ids.encode("UC", (ids.guid("unitclass", c),), path=path[2:])
        base = canonical(cls)
        return {
            "WebId": w,
            "Id": str(ids.guid("unitclass", c)),
            "Name": cls.name,
            "Description": cls.description,
            "CanonicalUnitName": base.name,
            "CanonicalUnitAbbreviation": base.abbreviation,
            "Path": path,
            "Links": {
                "Self": request.link(f"/unitclasses/{w}"),
                "CanonicalUnit": request.link(f"/unitclasses/{w}/canonicalunit"),
                "Units": request.link(f"/unitclasses/{w}/units"),
            },
        }

    def unit_json(request: Request, c: int, n: int) -> dict:
        cls = UNIT_CLASSES[c]
        unit, base = cls.units[n], canonical(cls)
        path = f"{server_path}\\UOMDatabase\\{unit.name}"
        guid = ids.guid("unit", c * UNIT_STRIDE + n)
        w = ids.encode("Ut", (guid,), path=path[2:])
        is_base = unit is base
        return {
            "WebId": w,
            "Id": str(guid),
            "Name": unit.name,
            "Abbreviation": unit.abbreviation,
            "Description": f"{unit.name} ({cls.name})",
            "Path": path,
            "Factor": unit.factor,
            "Offset": unit.offset,
            "ReferenceFactor": unit.factor,
            "ReferenceOffset": unit.offset,
            "ReferenceUnitAbbreviation": "" if is_base else base.abbreviation,
            "Links": {
                "Self": request.link(f"/units/{w}"),
                "Class": request.link(f"/unitclasses/{unit_class_json(request, c)['WebId']}"),
            },
        }

    def resolve_class(web_id: str) -> int:
        c = ids.resolve(web_id, "UC", "unitclass")
        if c >= len(UNIT_CLASSES):
            raise ApiError(404, f"The specified unit class was not found. WebID: '{web_id}'.")
        return c

    @router.route("GET", "/assetservers/{web_id}/unitclasses")
    def server_unit_classes(request: Request, web_id: str) -> Any:
        owners["assetservers"](web_id)
        return fields(request, {"Links": {}, "Items": [unit_class_json(request, c) for c in range(len(UNIT_CLASSES))]})

    @router.route("GET", "/unitclasses/{web_id}")
    def get_unit_class(request: Request, web_id: str) -> Any:
        return fields(request, unit_class_json(request, resolve_class(web_id)))

    @router.route("GET", "/unitclasses/{web_id}/units")
    def class_units(request: Request, web_id: str) -> Any:
        c = resolve_class(web_id)
        return fields(
            request, {"Links": {}, "Items": [unit_json(request, c, n) for n in range(len(UNIT_CLASSES[c].units))]}
        )

    @router.route("GET", "/unitclasses/{web_id}/canonicalunit")
    def class_canonical_unit(request: Request, web_id: str) -> Any:
        c = resolve_class(web_id)
        return fields(request, unit_json(request, c, UNIT_CLASSES[c].units.index(canonical(UNIT_CLASSES[c]))))

    @router.route("GET", "/units/{web_id}")
    def get_unit(request: Request, web_id: str) -> Any:
        c, n = divmod(ids.resolve(web_id, "Ut", "unit"), UNIT_STRIDE)
        if c >= len(UNIT_CLASSES) or n >= len(UNIT_CLASSES[c].units):
            raise ApiError(404, f"The specified unit was not found. WebID: '{web_id}'.")
        return fields(request, unit_json(request, c, n))
