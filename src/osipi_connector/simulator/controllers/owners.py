"""The object a `/{collection}/{webId}` URL names, per collection: the one place the routes that only
need to know an owner exists (empty collections, security, `*/multiple`) look WebIDs up."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from osipi_connector.simulator.af import ATTRIBUTE_CATEGORIES, CATEGORIES, TEMPLATES
from osipi_connector.simulator.controllers.assets import resolve_database
from osipi_connector.simulator.controllers.dataservers import resolve_point
from osipi_connector.simulator.controllers.enumerations import SETS
from osipi_connector.simulator.http import ApiError

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator


def resolvers(sim: Simulator) -> dict[str, Callable[[str], object]]:
    """collection -> a function that raises PI's 400/404 unless the WebID names one of ours."""
    ids, af = sim.ids, sim.af

    def bounded(marker: str, kind: str, count: int, what: str) -> Callable[[str], object]:
        def resolve(web_id: str) -> int:
            index = ids.resolve(web_id, marker, kind)
            if index >= count:
                raise ApiError(404, f"The specified {what} was not found. WebID: '{web_id}'.")
            return index

        return resolve

    return {
        "assetservers": lambda w: ids.resolve(w, "RS", "assetserver", path=af.server_name),
        "assetdatabases": lambda w: resolve_database(sim, w),
        "elements": af.resolve,
        "attributes": af.resolve_attribute,
        "eventframes": sim.event_frames.resolve,
        "elementtemplates": bounded("ET", "template", len(TEMPLATES), "element template"),
        "elementcategories": bounded("EC", "category", len(CATEGORIES), "element category"),
        "dataservers": lambda w: ids.resolve(w, "DS", "dataserver", path=sim.points.server_name),
        "points": lambda w: resolve_point(sim, w),
        "enumerationsets": bounded("MSD", "enumerationset", len(SETS), "enumeration set"),
        "attributecategories": bounded("AC", "attributecategory", len(ATTRIBUTE_CATEGORIES), "attribute category"),
    }
