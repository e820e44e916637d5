"""notebooks/ad_hoc_run.py, run cell by cell up to the connector run, against the simulator with local Delta.

Only the Databricks runtime objects are stand-ins (`dbutils` widgets and secrets); the connector, the HTTP
server and the Delta tables are real. The cells after the run read Unity Catalog tables: Databricks only.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from deltalake import DeltaTable

from osipi_connector.simulator.server import RunningSimulator
from tests.bundle.bundle_files import ROOT

NOTEBOOK = ROOT / "notebooks" / "ad_hoc_run.py"
CELL = "# COMMAND ----------"


class Widgets:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.declared: list[str] = []

    def text(self, name: str, default: str, label: str = "") -> None:
        self.declared.append(name)
        self.values.setdefault(name, default)

    def dropdown(self, name: str, default: str, choices: list[str], label: str = "") -> None:
        assert default in choices, f"widget {name}: default {default!r} not among {choices}"
        self.text(name, default, label)

    def get(self, name: str) -> str:
        assert name in self.declared, f"widget {name!r} read before it is declared"
        return self.values[name]


class Secrets:
    def __init__(self, values: dict[tuple[str, str], str]) -> None:
        self.values = values
        self.read: list[tuple[str, str]] = []

    def get(self, scope: str, key: str) -> str:
        self.read.append((scope, key))
        return self.values[(scope, key)]


class Library:
    def restartPython(self) -> None:  # Databricks spells it so
        pass


class DbUtils:
    def __init__(self, widgets: dict[str, str], secrets: dict[tuple[str, str], str]) -> None:
        self.widgets = Widgets(widgets)
        self.secrets = Secrets(secrets)
        self.library = Library()


def cells_until_run() -> list[str]:
    cells = NOTEBOOK.read_text(encoding="utf-8").split(CELL)
    last = next(i for i, cell in enumerate(cells) if "result = PILakeflowConnector(config).run()" in cell)
    return cells[: last + 1]


@pytest.mark.integration
def test_notebook_runs_the_connector_with_its_widgets(
    simulator: RunningSimulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # the local sink writes ./lakehouse
    dbutils = DbUtils(
        widgets={
            "pi_web_api_url": simulator.url,
            "tag_names": "TI000018.PV, CNT000001.PV",
            "start": "2025-03-01T11:00:00Z",
            "end": "2025-03-01T12:00:00Z",
            "schema": "bronze_adhoc",
        },
        secrets={("pi-connector", "pi_username"): "piuser", ("pi-connector", "pi_password"): "pipassword"},
    )
    namespace: dict = {"dbutils": dbutils, "display": print}
    for cell in cells_until_run():
        exec(compile(cell, str(NOTEBOOK), "exec"), namespace)

    result = namespace["result"]
    assert result.status == "success", result.errors
    assert dbutils.secrets.read == [("pi-connector", "pi_username"), ("pi-connector", "pi_password")]
    stored = DeltaTable(str(tmp_path / "lakehouse" / "main" / "bronze_adhoc" / "pi_timeseries")).to_pyarrow_table()
    assert set(stored.column("tag_name").to_pylist()) == {"TI000018.PV", "CNT000001.PV"}
    assert stored.num_rows == result.rows["pi_timeseries"]
    stamps = stored.column("timestamp").to_pylist()
    assert min(stamps).isoformat() >= "2025-03-01T11:00:00+00:00"
    assert max(stamps).isoformat() <= "2025-03-01T12:00:00+00:00"


@pytest.mark.parametrize(("choice", "setting"), [("auto", "auto"), ("false", False), ("true", True)])
def test_distribution_can_be_switched_in_the_notebook(choice: str, setting: object) -> None:
    """Standard access clusters whose executors cannot reach PI need `false` without editing the notebook."""
    from osipi_connector.config import ConnectorConfig

    dbutils = DbUtils(
        widgets={"distributed": choice},
        secrets={("pi-connector", "pi_username"): "piuser", ("pi-connector", "pi_password"): "pipassword"},
    )
    namespace: dict = {"dbutils": dbutils, "display": print}
    for cell in cells_until_run()[:-1]:  # up to the connector's configuration, not the run
        exec(compile(cell, str(NOTEBOOK), "exec"), namespace)

    assert ConnectorConfig.from_flat(namespace["config"]).performance.distributed == setting
