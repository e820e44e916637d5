"""`bronze.pi_element_templates` and `bronze.pi_attribute_templates`: every element and event-frame template
of one AF database (AF keeps both in `ElementTemplates`, told apart by InstanceType) with the attribute
templates each defines, read for all templates through the batch controller.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
import pyarrow as pa

from osipi_connector.extract.pi_json import get_many, listed_items, to_table
from osipi_connector.lake.schemas import ATTRIBUTE_TEMPLATES, ELEMENT_TEMPLATES
from osipi_connector.piwebapi.client import PIClient, SubRequest

PAGE = 1000
TEMPLATE_FIELDS = (
    "Links;Items.WebId;Items.Id;Items.Name;Items.InstanceType;Items.Path;Items.Description;Items.BaseTemplate;"
    "Items.NamingPattern;Items.AllowElementToExtend;Items.Severity;Items.CanBeAcknowledged;Items.CategoryNames"
)
ATTRIBUTE_TEMPLATE_FIELDS = (
    "Items.WebId;Items.Id;Items.Name;Items.Path;Items.Description;Items.Type;Items.TypeQualifier;"
    "Items.DefaultUnitsName;Items.DefaultValue;Items.DataReferencePlugIn;Items.ConfigString;"
    "Items.IsConfigurationItem;Items.IsExcluded;Items.IsHidden;Items.CategoryNames"
)


def fetch_templates(
    client: PIClient, database: dict[str, Any], *, run_id: str, ingested_at: datetime
) -> tuple[pa.Table, pa.Table]:
    """(ELEMENT_TEMPLATES rows, ATTRIBUTE_TEMPLATES rows) of the database."""
    lineage = {"ingested_at": ingested_at, "run_id": run_id}
    listing = client.iter_items(
        f"assetdatabases/{database['WebId']}/elementtemplates", {"selectedFields": TEMPLATE_FIELDS}, page_size=PAGE
    )
    templates = {t["Id"]: t for t in listing}  # keyed by GUID: a template PI lists twice is one row
    rows = [
        {
            "template_id": t["Id"],
            "template_webid": t["WebId"],
            "template_name": t["Name"],
            "instance_type": t.get("InstanceType"),
            "path": t.get("Path"),
            "description": t.get("Description") or None,
            "base_template": t.get("BaseTemplate") or None,
            "naming_pattern": t.get("NamingPattern") or None,
            "allow_element_to_extend": t.get("AllowElementToExtend"),
            "severity": t.get("Severity"),
            "can_be_acknowledged": t.get("CanBeAcknowledged"),
            "categories": t.get("CategoryNames") or [],
            "af_database_webid": database["WebId"],
            **lineage,
        }
        for t in templates.values()
    ]
    params = {"selectedFields": ATTRIBUTE_TEMPLATE_FIELDS}
    requests = {
        key: SubRequest(f"elementtemplates/{t['WebId']}/attributetemplates", params) for key, t in templates.items()
    }
    labels = {key: t["Name"] for key, t in templates.items()}
    lists = listed_items("reading attribute templates", get_many(client, requests), labels)
    attributes = {  # keyed by GUID: one source row per target row of the MERGE
        a["Id"]: {
            "attribute_template_id": a["Id"],
            "attribute_template_webid": a["WebId"],
            "template_id": key,
            "template_name": templates[key]["Name"],
            "attribute_name": a["Name"],
            "path": a.get("Path"),
            "description": a.get("Description") or None,
            "type": a.get("Type"),
            "type_qualifier": a.get("TypeQualifier") or None,
            "default_units": a.get("DefaultUnitsName") or None,
            "default_value": orjson.dumps(a.get("DefaultValue")).decode(),
            "data_reference": a.get("DataReferencePlugIn") or None,
            "config_string": a.get("ConfigString") or None,
            "is_configuration_item": a.get("IsConfigurationItem"),
            "is_excluded": a.get("IsExcluded"),
            "is_hidden": a.get("IsHidden"),
            "categories": a.get("CategoryNames") or [],
            **lineage,
        }
        for key, items in lists.items()
        for a in items
    }
    return to_table(ELEMENT_TEMPLATES, rows), to_table(ATTRIBUTE_TEMPLATES, list(attributes.values()))
