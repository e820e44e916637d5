"""`bronze.pi_asset_hierarchy` and `bronze.pi_element_attributes`: every element of one AF database.

PI returns the hierarchy flat (`searchFullHierarchy=true`, paged) and never embeds children, so parent
and depth come from each element's Path: `\\\\server\\db\\Site\\Area` has depth 2 and parent
`\\\\server\\db\\Site`. Attributes are read per element through the batch controller, many per POST.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from osipi_connector.extract.pi_json import get_many, link_webid, listed_items, looks_like_webid, to_table
from osipi_connector.lake.schemas import ASSET_HIERARCHY, ELEMENT_ATTRIBUTES
from osipi_connector.piwebapi.client import PIClient, PIWebAPIError, SubRequest

PAGE = 1000  # PI's default maxCount; a page this full means "there may be more"
ELEMENT_FIELDS = "Links;Items.WebId;Items.Id;Items.Name;Items.Path;Items.TemplateName;Items.CategoryNames;Items.Description;Items.HasChildren"
ATTRIBUTE_FIELDS = (
    "Links;Items.WebId;Items.Id;Items.Name;Items.Path;Items.Description;Items.Type;Items.DefaultUnitsName;"
    "Items.DefaultUnitsNameAbbreviation;Items.DataReferencePlugIn;Items.ConfigString;Items.CategoryNames;Items.Links.Point"
)

# hidden attributes are real data (only the UI hides them); excluded ones do not exist on this element
ATTRIBUTE_PARAMS = {"showHidden": "true", "selectedFields": ATTRIBUTE_FIELDS}


def find_database(client: PIClient, af_database: str) -> dict[str, Any]:
    """The AF database by WebID or path (`\\\\server\\database`); a path PI does not resolve directly is
    looked up by walking `/assetservers` (some PI Web API versions lack `assetdatabases?path=`)."""
    text = af_database.strip()
    fields = {"selectedFields": "WebId;Name;Path"}
    if looks_like_webid(text, "RD"):
        return client.get_json(f"assetdatabases/{text}", fields)
    path = "\\\\" + text.lstrip("\\")
    if path.count("\\") != 3:
        raise ValueError(
            f"extraction.af_database: {af_database!r} is neither an AF database WebID nor a path like \\\\server\\database"
        )
    try:
        return client.get_json("assetdatabases", {"path": path, **fields})
    except PIWebAPIError as exc:
        if exc.status not in (400, 404, 405):
            raise
    for server in client.iter_items("assetservers", {"selectedFields": "Links;Items.WebId"}):
        listing = {"selectedFields": "Links;Items.WebId;Items.Name;Items.Path"}
        for db in client.iter_items(f"assetservers/{server['WebId']}/assetdatabases", listing):
            if str(db.get("Path", "")).upper() == path.upper():
                return db
    raise PIWebAPIError(f"AF database {path} not found — check extraction.af_database", status=404)


def split_path(path: str) -> tuple[str | None, int]:
    """(parent path or None at the top, depth) of an element path `\\\\server\\db\\A\\B` (depth 2)."""
    parts = path.lstrip("\\").split("\\")
    depth = len(parts) - 2
    if depth < 1:
        raise ValueError(f"element path {path!r} is not below an AF database")
    parent = "\\\\" + "\\".join(parts[:-1]) if depth > 1 else None
    return parent, depth


def point_path(config_string: str | None) -> str | None:
    """The PI point path in a PI Point data reference's ConfigString (`\\\\srv\\tag;ReadOnly=False` or
    `\\\\srv\\tag?ptid`); None when it still holds substitutions (`%Element%`) only PI resolves."""
    if not config_string:
        return None
    path = config_string.split(";", 1)[0].split("?", 1)[0].strip()
    if not path.startswith("\\\\") or "%" in path or path.count("\\") < 3:
        return None
    return path


def fetch_af(client: PIClient, *, af_database: str, run_id: str, ingested_at: datetime) -> tuple[pa.Table, pa.Table]:
    """(hierarchy, attributes) of every element of the database, with referenced point WebIDs."""
    db = find_database(client, af_database)
    elements: dict[str, dict] = {}
    params = {"searchFullHierarchy": "true", "selectedFields": ELEMENT_FIELDS}
    for element in client.iter_items(f"assetdatabases/{db['WebId']}/elements", params, page_size=PAGE):
        elements.setdefault(element["Id"], element)  # a page boundary shifted by a concurrent edit repeats one
    by_path = {e["Path"].upper(): e["WebId"] for e in elements.values()}
    hierarchy = []
    for e in elements.values():
        parent, depth = split_path(e["Path"])
        hierarchy.append(
            {
                "element_id": e["Id"],
                "element_webid": e["WebId"],
                "element_name": e["Name"],
                "element_path": e["Path"],
                "parent_path": parent,
                "parent_webid": by_path.get(parent.upper()) if parent else None,
                "depth": depth,
                "template_name": e.get("TemplateName") or None,
                "categories": e.get("CategoryNames") or [],
                "description": e.get("Description") or None,
                "has_children": e.get("HasChildren"),
                "af_database_webid": db["WebId"],
                "af_database_path": db.get("Path"),
                "ingested_at": ingested_at,
                "run_id": run_id,
            }
        )
    attributes = _attributes(client, list(elements.values()), run_id, ingested_at)
    return to_table(ASSET_HIERARCHY, hierarchy), attributes


def _attributes(client: PIClient, elements: list[dict], run_id: str, ingested_at: datetime) -> pa.Table:
    params = {"maxCount": PAGE, **ATTRIBUTE_PARAMS}
    requests = {e["WebId"]: SubRequest(f"elements/{e['WebId']}/attributes", params) for e in elements}
    listed = listed_items(
        "reading element attributes", get_many(client, requests), {e["WebId"]: e["Path"] for e in elements}
    )
    pairs: list[tuple[dict, dict]] = []
    for e in elements:
        items = listed[e["WebId"]]
        if len(items) >= PAGE:  # a rare element with more attributes than one page: page it on its own
            items = list(client.iter_items(f"elements/{e['WebId']}/attributes", ATTRIBUTE_PARAMS, page_size=PAGE))
        pairs.extend((e, a) for a in items)
    points = _resolve_point_paths(client, [a for _, a in pairs])
    rows = []
    for e, a in pairs:
        path = point_path(a.get("ConfigString")) if a.get("DataReferencePlugIn") == "PI Point" else None
        rows.append(
            {
                "attribute_id": a["Id"],
                "attribute_webid": a["WebId"],
                "element_id": e["Id"],
                "element_webid": e["WebId"],
                "element_path": e["Path"],
                "attribute_name": a["Name"],
                "attribute_path": a.get("Path"),
                "description": a.get("Description") or None,
                "type": a.get("Type"),
                "default_units": a.get("DefaultUnitsNameAbbreviation") or a.get("DefaultUnitsName") or None,
                "data_reference": a.get("DataReferencePlugIn") or "",
                "config_string": a.get("ConfigString") or None,
                "point_webid": link_webid(a.get("Links"), "Point") or (points.get(path.upper()) if path else None),
                "point_name": path.rsplit("\\", 1)[-1] if path else None,
                "categories": a.get("CategoryNames") or [],
                "ingested_at": ingested_at,
                "run_id": run_id,
            }
        )
    return to_table(ELEMENT_ATTRIBUTES, rows)


def _resolve_point_paths(client: PIClient, attributes: list[dict]) -> dict[str, str]:
    """WebIDs of PI points named only by ConfigString (no `Links.Point`): upper-cased path -> WebID.
    Unknown points stay unresolved (null point_webid), as PI shows such a broken reference."""
    paths = {
        p.upper(): p
        for a in attributes
        if a.get("DataReferencePlugIn") == "PI Point" and not link_webid(a.get("Links"), "Point")
        if (p := point_path(a.get("ConfigString")))
    }
    requests = {key: SubRequest("points", {"path": p, "selectedFields": "WebId"}) for key, p in paths.items()}
    return {key: sub.content["WebId"] for key, sub in get_many(client, requests).items() if sub.ok}
