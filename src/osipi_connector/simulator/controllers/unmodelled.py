"""GET routes of the official swagger for things the simulated PI System has none of (time rules, security
identities, AF enumeration sets...) and the security of the objects it has.

Each answers as the real server does for a system without them: an empty `{"Links", "Items"}`
collection after checking the owner's WebID (so a bad WebID is still a 400/404). Security is read-only:
the caller may read, read data, subscribe and annotate (the rights the event frames advertise), and
one access-control entry grants that to the `World` identity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from osipi_connector.simulator.controllers.eventframes import SECURITY
from osipi_connector.simulator.controllers.owners import resolvers
from osipi_connector.simulator.http import ApiError, Request, select_fields

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

EMPTY = {
    "assetservers": (
        "analysisruleplugins", "notificationcontacttemplates", "securityidentities", "securitymappings",
        "timeruleplugins", "timerules",
    ),
    "assetdatabases": ("enumerationsets", "referencedelements"),
    "elements": ("referencedelements",),
}  # fmt: skip
SECURED = (
    "assetservers", "assetdatabases", "elements", "elementtemplates", "elementcategories", "eventframes",
    "enumerationsets", "attributecategories",
)  # fmt: skip
# routes of the swagger that are not simulated, answered with 501 and what to use instead
NOT_SIMULATED = {
    "/streams/{web_id}/channel": "Channels (WebSocket) are not simulated: poll the stream's value instead.",
    "/streamsets/channel": "Channels (WebSocket) are not simulated: poll streamsets/value instead.",
    "/streamsets/{web_id}/channel": "Channels (WebSocket) are not simulated: poll streamsets/{webId}/value instead.",
    "/assetdatabases/{web_id}/export": "AF XML export is not simulated: read the elements and attributes instead.",
}
# World may read; an object's rights as AF lists them in an access-control entry
WORLD = "World"
ENTRY: dict[str, object] = {
    "Name": WORLD,
    "SecurityIdentityName": WORLD,
    "AllowRights": ["Read", "ReadData", "Subscribe", "Annotate"],
    "DenyRights": [],
    "Links": {},
}


def register(sim: Simulator) -> None:
    router = sim.router
    owners = resolvers(sim)

    def empty(collection: str) -> Any:
        def handler(request: Request, web_id: str) -> Any:
            owners[collection](web_id)
            return select_fields({"Links": {}, "Items": []}, request.arg("selectedFields"))

        return handler

    for collection, subs in EMPTY.items():
        for sub in subs:
            router.add("GET", f"/{collection}/{{web_id}}/{sub}", empty(collection))

    def security(collection: str) -> Any:
        def handler(request: Request, web_id: str) -> Any:
            owners[collection](web_id)
            users = request.args("userIdentity") or [request.user or "Anonymous"]
            items = [
                {
                    "OwnerWebId": web_id,
                    "SecurityItem": "Default",
                    "UserIdentity": user,
                    "Links": {},
                    **SECURITY,
                    "Rights": [name[3:] for name, allowed in SECURITY.items() if allowed],
                }
                for user in users
            ]
            return select_fields({"Links": {}, "Items": items}, request.arg("selectedFields"))

        return handler

    def entries(collection: str) -> Any:
        def handler(request: Request, web_id: str) -> Any:
            owners[collection](web_id)
            return select_fields({"Links": {}, "Items": [dict(ENTRY)]}, request.arg("selectedFields"))

        return handler

    def entry(collection: str) -> Any:
        def handler(request: Request, web_id: str, name: str) -> Any:
            owners[collection](web_id)
            if name.upper() != WORLD.upper():
                raise ApiError(404, f"The security entry '{name}' was not found.")
            return select_fields(dict(ENTRY), request.arg("selectedFields"))

        return handler

    for collection in SECURED:
        router.add("GET", f"/{collection}/{{web_id}}/security", security(collection))
        router.add("GET", f"/{collection}/{{web_id}}/securityentries", entries(collection))
        router.add("GET", f"/{collection}/{{web_id}}/securityentries/{{name}}", entry(collection))

    def saved_search(request: Request, search_id: str) -> Any:
        raise ApiError(404, f"The search '{search_id}' was not found: create it with POST first.")

    def not_simulated(message: str) -> Any:
        def handler(request: Request, **_: str) -> Any:
            raise ApiError(501, message)

        return handler

    for path, message in NOT_SIMULATED.items():
        router.add("GET", path, not_simulated(message))
    router.add("GET", "/elements/searchbyattribute/{search_id}", saved_search)
    router.add("GET", "/eventframes/searchbyattribute/{search_id}", saved_search)
