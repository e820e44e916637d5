"""`bronze.pi_units_of_measure`: the AF server's UOM database, one row per unit with its class (Temperature,
Pressure, ...) and the factor and offset that convert it to the class's canonical unit. The server is the
one holding the configured AF database (units belong to the AF server, not to a database)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from osipi_connector.extract.pi_json import get_many, listed_items, to_table
from osipi_connector.lake.schemas import UNITS_OF_MEASURE
from osipi_connector.piwebapi.client import PIClient, PIWebAPIError, SubRequest

CLASS_FIELDS = "Items.WebId;Items.Id;Items.Name;Items.CanonicalUnitName;Items.CanonicalUnitAbbreviation"
UNIT_FIELDS = (
    "Items.WebId;Items.Id;Items.Name;Items.Abbreviation;Items.Description;Items.Path;Items.Factor;Items.Offset;"
    "Items.ReferenceFactor;Items.ReferenceOffset;Items.ReferenceUnitAbbreviation"
)


def asset_server(client: PIClient, database: dict[str, Any]) -> dict[str, Any]:
    """The AF server of a database (`\\\\server\\database` -> `\\\\server`)."""
    name = str(database.get("Path", "")).lstrip("\\").split("\\", 1)[0]
    if not name:
        raise PIWebAPIError(f"AF database {database.get('WebId')} has no path: cannot tell its AF server")
    return client.get_json("assetservers", {"path": f"\\\\{name}", "selectedFields": "WebId;Name"})


def fetch_units_of_measure(
    client: PIClient, database: dict[str, Any], *, run_id: str, ingested_at: datetime
) -> pa.Table:
    """UNITS_OF_MEASURE rows of every unit class of the database's AF server."""
    server = asset_server(client, database)
    classes = client.get_json(f"assetservers/{server['WebId']}/unitclasses", {"selectedFields": CLASS_FIELDS})
    by_id = {c["Id"]: c for c in classes.get("Items") or []}
    requests = {
        key: SubRequest(f"unitclasses/{c['WebId']}/units", {"selectedFields": UNIT_FIELDS}) for key, c in by_id.items()
    }
    units = listed_items(
        "reading units of measure", get_many(client, requests), {k: c["Name"] for k, c in by_id.items()}
    )
    rows = {
        u["Id"]: {
            "uom_id": u["Id"],
            "uom_webid": u["WebId"],
            "uom_name": u["Name"],
            "abbreviation": u.get("Abbreviation"),
            "description": u.get("Description") or None,
            "path": u.get("Path"),
            "class_id": key,
            "class_name": by_id[key]["Name"],
            "canonical_unit_name": by_id[key].get("CanonicalUnitName"),
            "canonical_unit_abbreviation": by_id[key].get("CanonicalUnitAbbreviation"),
            "is_canonical": u["Name"] == by_id[key].get("CanonicalUnitName"),
            "factor": u.get("Factor"),
            "offset": u.get("Offset"),
            "reference_factor": u.get("ReferenceFactor"),
            "reference_offset": u.get("ReferenceOffset"),
            "reference_unit_abbreviation": u.get("ReferenceUnitAbbreviation") or None,
            "asset_server_webid": server["WebId"],
            "ingested_at": ingested_at,
            "run_id": run_id,
        }
        for key, items in units.items()
        for u in items
    }
    return to_table(UNITS_OF_MEASURE, list(rows.values()))
