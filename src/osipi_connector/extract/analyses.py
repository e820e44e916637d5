"""`bronze.pi_analyses` and `bronze.pi_analysis_templates`: the AF analyses of one database (what each
calculates on which element, how often, whether it runs) and the templates they are built from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pyarrow as pa

from osipi_connector.extract.pi_json import to_table
from osipi_connector.lake.schemas import ANALYSES, ANALYSIS_TEMPLATES
from osipi_connector.piwebapi.client import PIClient

PAGE = 1000
ANALYSIS_FIELDS = (
    "Links;Items.WebId;Items.Id;Items.Name;Items.Path;Items.Description;Items.TargetWebId;Items.TemplateName;"
    "Items.AnalysisRulePlugInName;Items.TimeRulePlugInName;Items.Status;Items.Priority;Items.OutputTime;"
    "Items.GroupId;Items.AutoCreated;Items.IsConfigured;Items.PublishResults;Items.CategoryNames"
)
TEMPLATE_FIELDS = (
    "Links;Items.WebId;Items.Id;Items.Name;Items.Path;Items.Description;Items.TargetName;"
    "Items.AnalysisRulePlugInName;Items.TimeRulePlugInName;Items.OutputTime;Items.CreateEnabled;Items.GroupId;"
    "Items.CategoryNames"
)


def fetch_analyses(
    client: PIClient, database: dict[str, Any], *, run_id: str, ingested_at: datetime
) -> tuple[pa.Table, pa.Table]:
    """(ANALYSES rows, ANALYSIS_TEMPLATES rows) of the database, each collection paged."""
    base, lineage = f"assetdatabases/{database['WebId']}", _lineage(database, run_id, ingested_at)
    analyses = {
        a["Id"]: {
            "analysis_id": a["Id"],
            "analysis_webid": a["WebId"],
            "analysis_name": a["Name"],
            "path": a.get("Path"),
            "description": a.get("Description") or None,
            "target_webid": a.get("TargetWebId") or None,
            "template_name": a.get("TemplateName") or None,
            "analysis_rule": a.get("AnalysisRulePlugInName") or None,
            "time_rule": a.get("TimeRulePlugInName") or None,
            "status": a.get("Status"),
            "priority": a.get("Priority"),
            "output_time": a.get("OutputTime") or None,
            "group_id": a.get("GroupId"),
            "auto_created": a.get("AutoCreated"),
            "is_configured": a.get("IsConfigured"),
            "publish_results": a.get("PublishResults"),
            "categories": a.get("CategoryNames") or [],
            **lineage,
        }
        for a in client.iter_items(f"{base}/analyses", {"selectedFields": ANALYSIS_FIELDS}, page_size=PAGE)
    }
    templates = {
        t["Id"]: {
            "analysis_template_id": t["Id"],
            "analysis_template_webid": t["WebId"],
            "analysis_template_name": t["Name"],
            "path": t.get("Path"),
            "description": t.get("Description") or None,
            "target_template_name": t.get("TargetName") or None,
            "analysis_rule": t.get("AnalysisRulePlugInName") or None,
            "time_rule": t.get("TimeRulePlugInName") or None,
            "output_time": t.get("OutputTime") or None,
            "create_enabled": t.get("CreateEnabled"),
            "group_id": t.get("GroupId"),
            "categories": t.get("CategoryNames") or [],
            **lineage,
        }
        for t in client.iter_items(f"{base}/analysistemplates", {"selectedFields": TEMPLATE_FIELDS}, page_size=PAGE)
    }
    return to_table(ANALYSES, list(analyses.values())), to_table(ANALYSIS_TEMPLATES, list(templates.values()))


def _lineage(database: dict[str, Any], run_id: str, ingested_at: datetime) -> dict[str, Any]:
    return {"af_database_webid": database["WebId"], "ingested_at": ingested_at, "run_id": run_id}
