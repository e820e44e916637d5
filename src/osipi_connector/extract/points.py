"""`bronze.pi_tags`: metadata of the selected PI points (by WebID, by name, by nameFilter).

A name or WebID that PI does not know is never dropped silently: `PointsNotFoundError` lists every one,
and carries the points that were found so a caller can still go on with those.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import pyarrow as pa

from osipi_connector.extract.pi_json import get_many, looks_like_webid, raise_failed, to_table
from osipi_connector.lake.schemas import TAGS
from osipi_connector.piwebapi.client import PIClient, PIWebAPIError, SubRequest

POINT_FIELDS = (
    "WebId;Id;Name;Path;Descriptor;PointClass;PointType;EngineeringUnits;DigitalSetName;Span;Zero;Step;Future"
)


class PointsNotFoundError(LookupError):
    """Some configured tags do not exist on the data server. `missing` names them; `table` holds the
    points that were found (TAGS schema)."""

    def __init__(self, missing: list[str], table: pa.Table, server: str):
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        super().__init__(
            f"{len(missing)} configured tag(s) not found on PI data server {server}: {shown} "
            "— fix extraction.tags / extraction.tag_names (names are case-insensitive; WebIDs must come from this server)"
        )
        self.missing = missing
        self.table = table


def find_data_server(client: PIClient, data_server: str | None) -> dict[str, Any]:
    """The data server by WebID or name; None picks the only (or first) one the PI Web API knows."""
    fields = {"selectedFields": "WebId;Name;Path"}
    if data_server and looks_like_webid(data_server, "DS"):
        return client.get_json(f"dataservers/{data_server}", fields)
    if data_server:
        name = data_server.strip("\\").removeprefix("PIServers[").rstrip("]")
        return client.get_json("dataservers", {"name": name, **fields})
    servers = client.get_json("dataservers", {"selectedFields": "Items.WebId;Items.Name;Items.Path"})["Items"]
    if not servers:
        raise PIWebAPIError("the PI Web API lists no data server — set extraction.data_server", status=404)
    return servers[0]


def resolve_points(
    client: PIClient,
    *,
    data_server: str | None,
    webids: Iterable[str],
    names: Iterable[str],
    name_filter: str | None,
    run_id: str,
    ingested_at: datetime,
) -> pa.Table:
    """TAGS rows of every point selected by WebID, name or nameFilter (union, one row per point)."""
    webids, names = list(dict.fromkeys(webids)), list(dict.fromkeys(names))
    if not (webids or names or name_filter):
        raise ValueError(
            "no tags selected: set extraction.tags (WebIDs), extraction.tag_names or extraction.name_filter ('*' = all)"
        )
    server = find_data_server(client, data_server)
    found: dict[str, dict] = {}
    if name_filter:
        params = {"nameFilter": name_filter, "selectedFields": "Links;" + _items(POINT_FIELDS)}
        for point in client.iter_items(f"dataservers/{server['WebId']}/points", params):
            found.setdefault(point["WebId"], point)
    requests = {f"webid:{w}": SubRequest(f"points/{w}", {"selectedFields": POINT_FIELDS}) for w in webids}
    requests |= {
        f"name:{n}": SubRequest("points", {"path": f"\\\\{server['Name']}\\{n}", "selectedFields": POINT_FIELDS})
        for n in names
    }
    missing, failed = [], {}
    for key, sub in get_many(client, requests).items():
        if sub.ok:
            found.setdefault(sub.content["WebId"], sub.content)
        elif sub.status in (400, 404):  # 400: a malformed or foreign WebID
            missing.append(key.split(":", 1)[1])
        else:
            failed[key] = sub
    raise_failed("reading PI points", failed)
    table = to_table(TAGS, [_row(p, server, run_id, ingested_at) for p in found.values()])
    if missing:
        raise PointsNotFoundError(missing, table, server["Name"])
    return table


def _items(fields: str) -> str:
    return ";".join(f"Items.{f}" for f in fields.split(";"))


def _row(point: dict, server: dict, run_id: str, ingested_at: datetime) -> dict[str, Any]:
    path = point.get("Path") or ""
    server_name = path.lstrip("\\").split("\\", 1)[0] or server["Name"]
    same_server = server_name.upper() == str(server["Name"]).upper()
    return {
        "tag_webid": point["WebId"],
        "tag_id": point.get("Id"),
        "tag_name": point["Name"],
        "path": path or None,
        "descriptor": point.get("Descriptor"),
        "point_class": point.get("PointClass"),
        "point_type": point.get("PointType"),
        "engineering_units": point.get("EngineeringUnits"),
        "digital_set_name": point.get("DigitalSetName") or None,
        "span": point.get("Span"),
        "zero": point.get("Zero"),
        "step": point.get("Step"),
        "future": point.get("Future"),
        "data_server_webid": server["WebId"] if same_server else None,
        "data_server_name": server_name,
        "ingested_at": ingested_at,
        "run_id": run_id,
    }
