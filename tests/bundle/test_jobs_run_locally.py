"""Each job's exact command line, run the way the wheel task runs it, against the simulator with local Delta.

Only what cannot exist off Databricks is replaced: `${var.*}` by the bundle's values, the workspace config
path by a config for the simulator, and `--lakehouse-root` is added so the local sink writes under tmp.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

from osipi_connector.simulator.server import RunningSimulator
from tests.bundle.bundle_files import ROOT, bundle, jobs

pytestmark = pytest.mark.integration

CLI = str(Path(sys.executable).with_name("osipi-connector"))
DEPLOYED_CONFIG = "${workspace.file_path}/config/connector_config.yaml"
AF_DATABASE = "\\\\PISIM-AF\\Plant"
JOB_PARAM = re.compile(r"\{\{job\.parameters\.([A-Za-z0-9_]+)\}\}")


def variable_values(target: str = "prod") -> dict[str, str]:
    config = bundle()
    values = {name: spec.get("default") for name, spec in config["variables"].items()}
    values.update(config["targets"][target].get("variables", {}))
    return {k: v for k, v in values.items() if isinstance(v, str | int)}


def task_argv(job_key: str, task_key: str, config: Path, url: str, job_params: dict[str, str] | None = None) -> list:
    job = next(job for _, key, job in jobs() if key == job_key)
    task = next(t for t in job["tasks"] if t["task_key"] == task_key)
    params = {p["name"]: p["default"] for p in job.get("parameters", [])} | (job_params or {})
    values = variable_values()
    argv = []
    for arg in task["python_wheel_task"]["parameters"]:
        arg = str(arg).replace(DEPLOYED_CONFIG, str(config))
        arg = re.sub(r"\$\{var\.([A-Za-z0-9_]+)\}", lambda m: str(values[m.group(1)]), arg)
        argv.append(JOB_PARAM.sub(lambda m: params[m.group(1)], arg))
    if "--pi-web-api-url" in argv:
        argv[argv.index("--pi-web-api-url") + 1] = url
    return argv


def run_cli(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PI_USERNAME": "piuser", "PI_PASSWORD": "pipassword"}
    return subprocess.run([CLI, *argv], capture_output=True, text=True, timeout=240, cwd=cwd, env=env, check=False)


def table(root: Path, schema: str, name: str) -> DeltaTable:
    return DeltaTable(str(root / "main" / schema / name))


@pytest.fixture(scope="module")
def sim_config_file(tmp_path_factory: pytest.TempPathFactory, simulator: RunningSimulator) -> Path:
    """The deployed config's shape, pointed at the simulator's tags and AF database."""
    folder = tmp_path_factory.mktemp("job")
    path = folder / "connector_config.yaml"
    path.write_text(
        f"""
pi_web_api:
  url: "https://replaced.by.the.job/piwebapi"
  auth_type: anonymous
extraction:
  name_filter: "TI00001*"
  start_date: "2025-03-01T06:00:00Z"
  af_database: '{AF_DATABASE}'
local:
  lakehouse_root: "{folder / "lakehouse"}"
""",
        encoding="utf-8",
    )
    return path


def test_deployed_config_loads_with_the_job_flags(simulator: RunningSimulator, tmp_path: Path) -> None:
    """config/connector_config.yaml as deployed, with the hourly job's overrides: it must reach the PI server."""
    argv = task_argv(
        "osipi_connector_job", "af_hierarchy_and_tags", ROOT / "config" / "connector_config.yaml", simulator.url
    )
    argv[argv.index("--datasets") + 1] = "tags"
    result = run_cli([*argv, "--lakehouse-root", str(tmp_path / "lake")], cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr[-2000:]
    # The sample tag names (SINUSOID, CDT158) are not on the simulator: the run reaches PI and says so.
    assert "not found on PI data server" in result.stdout + result.stderr, result.stdout + result.stderr


@pytest.mark.slow
def test_hourly_job_tasks_fill_the_tables_and_rerun_adds_no_duplicates(
    simulator: RunningSimulator, sim_config_file: Path
) -> None:
    folder = sim_config_file.parent
    lake = folder / "lakehouse"
    for task_key in ("af_hierarchy_and_tags", "timeseries", "event_frames"):
        argv = task_argv("osipi_connector_job", task_key, sim_config_file, simulator.url)
        result = run_cli([*argv, "--lakehouse-root", str(lake)], cwd=folder)
        assert result.returncode == 0, f"{task_key}: {result.stdout[-1500:]}\n{result.stderr[-1500:]}"

    tags = table(lake, "bronze", "pi_tags").to_pyarrow_table()
    assert tags.num_rows > 0
    assert all(name.upper().startswith("TI00001") for name in tags.column("tag_name").to_pylist())
    assert table(lake, "bronze", "pi_asset_hierarchy").to_pyarrow_table().num_rows > 0
    values = table(lake, "bronze", "pi_timeseries").to_pyarrow_table(columns=["tag_webid", "timestamp", "value_seq"])
    assert values.num_rows > 0
    assert set(values.column("tag_webid").to_pylist()) <= set(tags.column("tag_webid").to_pylist())
    event_frames = table(lake, "bronze", "pi_event_frames").to_pyarrow_table()

    rerun = run_cli(
        [
            *task_argv("osipi_connector_job", "timeseries", sim_config_file, simulator.url),
            "--lakehouse-root",
            str(lake),
        ],
        cwd=folder,
    )
    assert rerun.returncode == 0, rerun.stderr[-1500:]
    again = table(lake, "bronze", "pi_timeseries").to_pyarrow_table(columns=["tag_webid", "timestamp", "value_seq"])
    keys = set(zip(*(again.column(c).to_pylist() for c in again.column_names)))
    assert len(keys) == again.num_rows, "the re-run duplicated rows"
    assert again.num_rows >= values.num_rows
    assert table(lake, "bronze", "pi_event_frames").to_pyarrow_table().num_rows == event_frames.num_rows

    # Weekly maintenance, on the same tables (same catalog and schemas from the bundle variables).
    maintain = run_cli(
        [
            *task_argv("osipi_maintenance_job", "optimize_and_vacuum", sim_config_file, simulator.url),
            "--lakehouse-root",
            str(lake),
        ],
        cwd=folder,
    )
    assert maintain.returncode == 0, maintain.stderr[-1500:]
    operations = [entry["operation"] for entry in table(lake, "bronze", "pi_timeseries").history()]
    assert operations[0] == "OPTIMIZE", operations  # the latest commit: the Z-order rewrite
    after = table(lake, "bronze", "pi_timeseries").to_pyarrow_table(columns=["tag_webid", "timestamp", "value_seq"])
    assert after.num_rows == again.num_rows


@pytest.mark.slow
def test_backfill_job_reads_the_window_from_its_parameters(
    simulator: RunningSimulator, sim_config_file: Path, tmp_path: Path
) -> None:
    lake = tmp_path / "lakehouse"
    params = {"start": "2025-03-01T00:00:00Z", "end": "2025-03-01T02:00:00Z", "datasets": "timeseries"}
    argv = task_argv("osipi_backfill_job", "backfill", sim_config_file, simulator.url, params)
    assert argv[argv.index("--start") + 1] == params["start"]
    result = run_cli([*argv, "--lakehouse-root", str(lake)], cwd=tmp_path)
    assert result.returncode == 0, f"{result.stdout[-1500:]}\n{result.stderr[-1500:]}"
    stamps = table(lake, "bronze", "pi_timeseries").to_pyarrow_table(columns=["timestamp"]).column("timestamp")
    assert len(stamps) > 0
    low, high = min(stamps.to_pylist()), max(stamps.to_pylist())
    assert low.isoformat() >= "2025-03-01T00:00:00+00:00"
    assert high.isoformat() <= "2025-03-01T02:00:00+00:00"
