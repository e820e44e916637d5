"""`bronze.pi_categories`: the element, attribute, analysis and table categories of one AF database, one
row per category with its type (AF keeps the four kinds apart: one name may be a category of each)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from osipi_connector.extract.pi_json import get_many, listed_items, to_table
from osipi_connector.lake.schemas import CATEGORIES
from osipi_connector.piwebapi.client import PIClient, SubRequest

KINDS = {  # category_type -> the database's collection
    "Element": "elementcategories",
    "Attribute": "attributecategories",
    "Analysis": "analysiscategories",
    "Table": "tablecategories",
}
FIELDS = "Items.WebId;Items.Id;Items.Name;Items.Description;Items.Path"


def fetch_categories(client: PIClient, database: dict[str, Any], *, run_id: str, ingested_at: datetime) -> pa.Table:
    """CATEGORIES rows of the four kinds, read in one batch."""
    params = {"selectedFields": FIELDS}
    requests = {kind: SubRequest(f"assetdatabases/{database['WebId']}/{path}", params) for kind, path in KINDS.items()}
    lists = listed_items("reading categories", get_many(client, requests), {k: f"{k} categories" for k in KINDS})
    rows = {
        (kind, c["Id"]): {
            "category_type": kind,
            "category_id": c["Id"],
            "category_webid": c["WebId"],
            "category_name": c["Name"],
            "description": c.get("Description") or None,
            "path": c.get("Path"),
            "af_database_webid": database["WebId"],
            "ingested_at": ingested_at,
            "run_id": run_id,
        }
        for kind, items in lists.items()
        for c in items
    }
    return to_table(CATEGORIES, list(rows.values()))
