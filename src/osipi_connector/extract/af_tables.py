"""`bronze.pi_af_tables` and `bronze.pi_af_table_rows`: the AF tables of one database (engineering lookup
data: product specifications, shift schedules...) and their rows as PI's TableData gives them.

AF tables need no primary key, so a row's key is its position in the answer; each table row records how
many rows the table has now (`row_count`), which tells the current rows from those of a table that shrank.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from osipi_connector.extract.pi_json import get_many, raise_failed, to_table
from osipi_connector.lake.schemas import AF_TABLE_ROWS, AF_TABLES
from osipi_connector.piwebapi.client import PIClient, SubRequest

PAGE = 1000
TABLE_FIELDS = (
    "Links;Items.WebId;Items.Id;Items.Name;Items.Path;Items.Description;Items.TimeZone;Items.ConvertToLocalTime;"
    "Items.CategoryNames"
)


def fetch_af_tables(
    client: PIClient, database: dict[str, Any], *, run_id: str, ingested_at: datetime
) -> tuple[pa.Table, pa.Table]:
    """(AF_TABLES rows, AF_TABLE_ROWS rows); every table's data in one batch."""
    listing = client.iter_items(
        f"assetdatabases/{database['WebId']}/tables", {"selectedFields": TABLE_FIELDS}, page_size=PAGE
    )
    tables = {t["Id"]: t for t in listing}
    answers = get_many(client, {key: SubRequest(f"tables/{t['WebId']}/data") for key, t in tables.items()})
    raise_failed("reading AF table data", {tables[k]["Name"]: s for k, s in answers.items() if not s.ok})
    lineage = {"ingested_at": ingested_at, "run_id": run_id}
    table_rows: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    for key, t in tables.items():
        data = answers[key].content or {}
        data_rows = data.get("Rows") or []
        table_rows.append(
            {
                "table_id": key,
                "table_webid": t["WebId"],
                "table_name": t["Name"],
                "path": t.get("Path"),
                "description": t.get("Description") or None,
                "columns": orjson.dumps(data.get("Columns") or {}).decode(),
                "row_count": len(data_rows),
                "time_zone": t.get("TimeZone") or None,
                "convert_to_local_time": _flag(t.get("ConvertToLocalTime")),
                "categories": t.get("CategoryNames") or [],
                "af_database_webid": database["WebId"],
                **lineage,
            }
        )
        rows.extend(
            {"table_id": key, "row_index": i, "table_name": t["Name"], "row": orjson.dumps(row).decode(), **lineage}
            for i, row in enumerate(data_rows)
        )
    return to_table(AF_TABLES, table_rows), to_table(AF_TABLE_ROWS, rows)


def _flag(value: Any) -> bool | None:
    """PI documents ConvertToLocalTime as a boolean but its sample sends the string "false"."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value if isinstance(value, bool) else None
