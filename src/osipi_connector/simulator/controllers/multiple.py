"""`GET /{points|elements|attributes|eventframes}/multiple?webId=...&path=...` (GetMultiple): each
identifier answered as its single GET would, wrapped as `{Identifier, IdentifierType, Object,
Exception}`; 207 when some fail (Element GetMultiple reference page,
https://docs.aveva.com/bundle/pi-web-api-reference/page/help/controllers/element/actions/getmultiple.html).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from osipi_connector.simulator.http import ApiError, Request, Response, select_fields

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

COLLECTIONS = ("points", "elements", "attributes", "eventframes")
INCLUDE_MODES = ("All", "ItemsOnly", "ErrorsOnly")


def register(sim: Simulator) -> None:
    def multiple(collection: str) -> Any:
        def handler(request: Request) -> Any:
            wanted = [(w, "WebId") for w in request.args("webId")] + [(p, "Path") for p in request.args("path")]
            if not wanted:
                raise ApiError(400, "At least one 'webId' or 'path' parameter is required.")
            mode = request.enum_arg("includeMode", "All", INCLUDE_MODES)
            items, failed = [], False
            for identifier, kind in wanted:
                query = [("path", identifier)] if kind == "Path" else []
                path = f"/{collection}" + (f"/{identifier}" if kind == "WebId" else "")
                sub = Request("GET", path, query, request.headers, client=request.client, base_url=request.base_url)
                sub.user = request.user
                answer = sim.router.dispatch(sub)
                ok = answer.status == 200
                failed |= not ok
                if (mode == "ItemsOnly" and not ok) or (mode == "ErrorsOnly" and ok):
                    continue
                items.append(
                    {
                        "Identifier": identifier,
                        "IdentifierType": kind,
                        "Object": answer.body if ok else None,
                        "Exception": None if ok else {"Errors": answer.body.get("Errors", [])},
                    }
                )
            body = select_fields({"Links": {}, "Items": items}, request.arg("selectedFields"))
            return Response(207 if failed else 200, body)

        return handler

    for collection in COLLECTIONS:
        sim.router.add("GET", f"/{collection}/multiple", multiple(collection))
