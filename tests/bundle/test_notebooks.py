"""Notebooks stay importable source files: Databricks source format, valid Python, generated parts in sync."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from iot_connector import ddl
from tests.bundle.bundle_files import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.py"))
HEADER = "# Databricks notebook source"
CELL = "# COMMAND ----------"


def _constants(path: Path) -> dict[str, object]:
    """Module-level `NAME = <literal>` assignments of a notebook."""
    out = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                out[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return out


def test_the_three_notebooks_exist() -> None:
    assert {p.name for p in NOTEBOOKS} >= {"ad_hoc_run.py", "explore_bronze.py", "create_zerobus_table.py"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_databricks_source_and_python(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == HEADER, f"{path.name}: first line must be {HEADER!r} or Databricks imports a file"
    assert CELL in text, f"{path.name}: one cell only; split cells with {CELL!r}"
    ast.parse(text, filename=str(path))
    second_line = text.splitlines()[1]
    assert second_line == "# MAGIC %md", f"{path.name}: starts without a markdown cell explaining it"


def test_zerobus_notebook_embeds_the_generated_columns() -> None:
    constants = _constants(ROOT / "notebooks" / "create_zerobus_table.py")
    assert constants["COLUMNS"].strip("\n") == ddl.columns_sql(), (
        "notebooks/create_zerobus_table.py is out of date: paste iot_connector.ddl.columns_sql() into COLUMNS"
    )
    assert constants["TABLE_COMMENT"] == ddl.TABLE_COMMENT


def test_ad_hoc_notebook_reads_credentials_from_secrets_only() -> None:
    text = (ROOT / "notebooks" / "ad_hoc_run.py").read_text(encoding="utf-8")
    assert 'dbutils.secrets.get(w["secrets_scope"], "pi_password")' in text
    assert "password" not in "".join(line for line in text.splitlines() if "widgets.text" in line).lower()
    assert "PILakeflowConnector(config).run()" in text
