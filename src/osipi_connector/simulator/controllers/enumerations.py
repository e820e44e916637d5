"""The data server's digital state sets: `/dataservers/{id}/enumerationsets`, `/enumerationsets/{id}`,
`/enumerationsets/{id}/enumerationvalues`, `/enumerationvalues/{id}` and the by-path forms.

The sets are the points' digital sets plus PI's SYSTEM set (the states the simulator emits as bad
values), so every `DigitalSetName` a point shows can be looked up.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from osipi_connector.simulator.http import ApiError, Request, select_fields
from osipi_connector.simulator.points import DIGITAL_SETS, SYSTEM_STATES

if TYPE_CHECKING:
    from osipi_connector.simulator.core import Simulator

STRIDE = 1024  # enumeration-value GUID index: set * STRIDE + state number
SETS: tuple[tuple[str, tuple[tuple[str, int], ...]], ...] = tuple(
    sorted(
        [
            ("SYSTEM", tuple(sorted(((name, code) for name, code in SYSTEM_STATES.items()), key=lambda s: s[1]))),
            *((s.name, tuple((state, code) for code, state in enumerate(s.states))) for s in DIGITAL_SETS.values()),
        ],
        key=lambda s: s[0].upper(),
    )
)


def register(sim: Simulator) -> None:
    router, ids, points = sim.router, sim.ids, sim.points

    def set_path(s: int) -> str:
        return f"\\\\PIServers[{points.server_name}]\\EnumerationSets[{SETS[s][0]}]"

    def set_webid(s: int) -> str:
        return ids.encode("MSD", (ids.guid("enumerationset", s),), path=f"{points.server_name}\\{SETS[s][0]}")

    def value_webid(s: int, k: int) -> str:
        name = SETS[s][1][k][0]
        guids = (ids.guid("enumerationset", s), ids.guid("enumerationvalue", s * STRIDE + k))
        return ids.encode("MVD", guids, path=f"{points.server_name}\\{SETS[s][0]}|{name}")

    def set_json(request: Request, s: int) -> dict:
        w, link = set_webid(s), request.link
        return {
            "WebId": w,
            "Id": str(ids.guid("enumerationset", s)),
            "Name": SETS[s][0],
            "Description": "",
            "Path": set_path(s),
            "SerializeDescription": False,
            "Links": {
                "Self": link(f"/enumerationsets/{w}"),
                "DataServer": link(f"/dataservers/{points.server_webid}"),
                "Values": link(f"/enumerationsets/{w}/enumerationvalues"),
            },
        }

    def value_json(request: Request, s: int, k: int) -> dict:
        name, code = SETS[s][1][k]
        w, link = value_webid(s, k), request.link
        return {
            "WebId": w,
            "Id": str(ids.guid("enumerationvalue", s * STRIDE + k)),
            "Name": name,
            "Description": "",
            "Value": code,
            "Path": f"{set_path(s)}|{name}",
            "Parent": SETS[s][0],
            "Links": {
                "Self": link(f"/enumerationvalues/{w}"),
                "EnumerationSet": link(f"/enumerationsets/{set_webid(s)}"),
            },
        }

    def resolve_set(web_id: str) -> int:
        s = ids.resolve(web_id, "MSD", "enumerationset")
        if s >= len(SETS):
            raise ApiError(404, f"The specified enumeration set was not found. WebID: '{web_id}'.")
        return s

    def find_set(path: str) -> int:
        wanted = path.upper()
        s = next((s for s in range(len(SETS)) if set_path(s).upper() == wanted), None)
        if s is None:
            raise ApiError(404, f"The specified enumeration set was not found. Path: '{path}'.")
        return s

    def fields(request: Request, body: Any) -> Any:
        return select_fields(body, request.arg("selectedFields"))

    @router.route("GET", "/dataservers/{web_id}/enumerationsets")
    def server_sets(request: Request, web_id: str) -> Any:
        ids.resolve(web_id, "DS", "dataserver", path=points.server_name)
        return fields(request, {"Links": {}, "Items": [set_json(request, s) for s in range(len(SETS))]})

    @router.route("GET", "/enumerationsets")
    def set_by_path(request: Request) -> Any:
        path = request.arg("path")
        if not path:
            raise ApiError(400, "The 'path' parameter is required.")
        return fields(request, set_json(request, find_set(path)))

    @router.route("GET", "/enumerationsets/{web_id}")
    def get_set(request: Request, web_id: str) -> Any:
        return fields(request, set_json(request, resolve_set(web_id)))

    @router.route("GET", "/enumerationsets/{web_id}/enumerationvalues")
    def set_values(request: Request, web_id: str) -> Any:
        s = resolve_set(web_id)
        return fields(request, {"Links": {}, "Items": [value_json(request, s, k) for k in range(len(SETS[s][1]))]})

    @router.route("GET", "/enumerationvalues")
    def value_by_path(request: Request) -> Any:
        path = request.arg("path")
        if not path:
            raise ApiError(400, "The 'path' parameter is required.")
        owner, _, name = path.rpartition("|")
        s = find_set(owner)
        k = next((k for k, (n, _) in enumerate(SETS[s][1]) if n.upper() == name.upper()), None)
        if k is None:
            raise ApiError(404, f"The specified enumeration value was not found. Path: '{path}'.")
        return fields(request, value_json(request, s, k))

    @router.route("GET", "/enumerationvalues/{web_id}")
    def get_value(request: Request, web_id: str) -> Any:
        s = ids.resolve(web_id, "MVD", "enumerationset")
        index = ids.resolve(web_id, "MVD", "enumerationvalue", position=1)
        owner, k = divmod(index, STRIDE)
        if s >= len(SETS) or owner != s or k >= len(SETS[s][1]):
            raise ApiError(404, f"The specified enumeration value was not found. WebID: '{web_id}'.")
        return fields(request, value_json(request, s, k))
