"""Every wheel task of every job, called the way Databricks calls it (tests/bundle/trampoline.py), with the
shipped config/connector_config.yaml unchanged and each target's bundle variables, against the simulator.

The user sets exactly what the bundle names as site-specific: the PI Web API URL and the AF database
(`--var`); here they point at the simulator. Tables land in local Delta under the working directory (the
config's default lakehouse root), with the target's catalog and schemas.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from deltalake import DeltaTable

from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.points import DEFAULT_POINTS
from osipi_connector.simulator.server import RunningSimulator, running_simulator
from tests.bundle.trampoline import run_task, target_variables

pytestmark = pytest.mark.integration

SIM_AF_DATABASE = "\\\\PISIM-AF\\Plant"
CREDENTIALS = {"PI_USERNAME": "piuser", "PI_PASSWORD": "pipassword"}  # basic auth: from the environment off Databricks
HOURLY = ("af_hierarchy_and_tags", "timeseries", "event_frames", "values", "af_catalog")
PLANT_TAGS = 40  # a small plant: the shipped tag_name_filter "*" takes every point


@pytest.fixture(scope="module")
def plant(sim_config: SimConfig) -> Iterator[RunningSimulator]:
    with running_simulator(dataclasses.replace(sim_config, tags=PLANT_TAGS)) as running:
        yield running


def user_variables(target: str, url: str, **extra: str) -> dict[str, str]:
    return target_variables(target, {"pi_web_api_url": url, "af_database": SIM_AF_DATABASE, **extra})


def table(cwd: Path, variables: dict[str, str], layer: str, name: str) -> DeltaTable:
    schema = variables["checkpoint_schema"] if layer == "checkpoints" else variables["schema"]
    return DeltaTable(str(cwd / "lakehouse" / variables["catalog"] / schema / name))


def keys(dt: DeltaTable) -> list[tuple]:
    data = dt.to_pyarrow_table(columns=["tag_webid", "timestamp", "value_seq"])
    stamps = data.column("timestamp").cast("int64").to_numpy()
    return list(zip(data.column("tag_webid").to_pylist(), stamps.tolist(), data.column("value_seq").to_pylist()))


def succeed(job: str, task: str, variables: dict[str, str], cwd: Path, **kw) -> str:
    result = run_task(job, task, variables=variables, cwd=cwd, env=CREDENTIALS, **kw)
    assert result.returncode == 0, f"{job}.{task} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
    return result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(
    ("target", "job"), [("prod", "osipi_connector_job"), ("dev", "osipi_connector_serverless_job")]
)
def test_hourly_job_backfill_and_maintenance_succeed_with_the_shipped_config(
    plant: RunningSimulator, tmp_path: Path, target: str, job: str
) -> None:
    variables = user_variables(target, plant.url)
    for task in HOURLY:
        succeed(job, task, variables, tmp_path)

    tags = table(tmp_path, variables, "bronze", "pi_tags").to_pyarrow_table()
    every_point = PLANT_TAGS + len(DEFAULT_POINTS)  # the plant and PI's default points (SINUSOID...)
    assert tags.num_rows == every_point, "tag_name_filter '*' selects every point of the data server"
    assert table(tmp_path, variables, "bronze", "pi_asset_hierarchy").to_pyarrow_table().num_rows > 0
    assert table(tmp_path, variables, "bronze", "pi_element_attributes").to_pyarrow_table().num_rows > 0
    assert table(tmp_path, variables, "bronze", "pi_event_frames").to_pyarrow_table().num_rows > 0
    first = keys(table(tmp_path, variables, "bronze", "pi_timeseries"))
    assert first
    assert len(set(first)) == len(first)
    assert {k[0] for k in first} <= set(tags.column("tag_webid").to_pylist())
    for name in ("pi_interpolated", "pi_summary", "pi_current_value", "pi_point_attributes"):  # the values task
        assert table(tmp_path, variables, "bronze", name).to_pyarrow_table().num_rows > 0, name
    catalog = ("pi_element_templates", "pi_attribute_templates", "pi_categories", "pi_analyses", "pi_analysis_templates",
               "pi_af_tables", "pi_af_table_rows", "pi_eventframe_annotations", "pi_units_of_measure")  # fmt: skip
    for name in catalog:  # the af_catalog task
        assert table(tmp_path, variables, "bronze", name).to_pyarrow_table().num_rows > 0, name
    datasets = set(table(tmp_path, variables, "checkpoints", "pi_watermarks").to_pyarrow_table()["dataset"].to_pylist())
    assert {"timeseries", "event_frames", "interpolated", "summary"} <= datasets

    # The next scheduled run: nothing duplicated.
    succeed(job, "timeseries", variables, tmp_path)
    again = keys(table(tmp_path, variables, "bronze", "pi_timeseries"))
    assert len(set(again)) == len(again)
    assert set(first) <= set(again)

    # The backfill job with a window from its parameters, beside the same tables.
    window = {"start": "2025-02-27T00:00:00Z", "end": "2025-02-27T02:00:00Z"}
    succeed("osipi_backfill_job", "backfill", variables, tmp_path, job_params=window)
    stamps = [k[1] for k in keys(table(tmp_path, variables, "bronze", "pi_timeseries"))]
    low, high = (int(datetime.fromisoformat(window[k].replace("Z", "+00:00")).timestamp() * 1e6) for k in window)
    assert any(low <= s <= high for s in stamps), "the backfill window landed"

    # Weekly maintenance on the same catalog and schemas.
    before = keys(table(tmp_path, variables, "bronze", "pi_timeseries"))
    succeed("osipi_maintenance_job", "optimize_and_vacuum", variables, tmp_path)
    history = [entry["operation"] for entry in table(tmp_path, variables, "bronze", "pi_timeseries").history()]
    assert history[0] == "OPTIMIZE", history
    assert sorted(keys(table(tmp_path, variables, "bronze", "pi_timeseries"))) == sorted(before)


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/piwebapi"


def test_invalid_configuration_fails_the_task(simulator: RunningSimulator, tmp_path: Path) -> None:
    variables = user_variables("prod", "not-a-url")
    result = run_task("osipi_connector_job", "timeseries", variables=variables, cwd=tmp_path, env=CREDENTIALS)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "pi_web_api.url" in result.stderr


def test_missing_credentials_fail_the_task(simulator: RunningSimulator, tmp_path: Path) -> None:
    variables = user_variables("prod", simulator.url)
    env = {"PI_USERNAME": "", "PI_PASSWORD": ""}
    result = run_task("osipi_connector_job", "af_hierarchy_and_tags", variables=variables, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "PI_USERNAME" in result.stderr


def test_unreachable_pi_web_api_fails_the_task(tmp_path: Path) -> None:
    variables = user_variables("prod", closed_port_url(), tag_name_filter="TI0000*")
    result = run_task("osipi_connector_job", "timeseries", variables=variables, cwd=tmp_path, env=CREDENTIALS)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "run failed" in result.stderr


def test_partial_run_fails_the_task(simulator: RunningSimulator, tmp_path: Path) -> None:
    """Tags land but the AF database does not exist: the run is partial, and the task must not be green."""
    variables = user_variables(
        "prod", simulator.url, af_database="\\\\PISIM-AF\\NoSuchDatabase", tag_name_filter="TI00001*"
    )
    result = run_task(
        "osipi_connector_job", "af_hierarchy_and_tags", variables=variables, cwd=tmp_path, env=CREDENTIALS
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "partial" in result.stdout
    assert "NoSuchDatabase" in result.stderr
    assert table(tmp_path, variables, "bronze", "pi_tags").to_pyarrow_table().num_rows > 0


def test_maintenance_without_tables_fails_the_task(tmp_path: Path) -> None:
    variables = user_variables("prod", "https://pi.example.com/piwebapi")
    result = run_task("osipi_maintenance_job", "optimize_and_vacuum", variables=variables, cwd=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "no tables" in result.stderr


def test_backfill_with_an_unreadable_start_fails_the_task(simulator: RunningSimulator, tmp_path: Path) -> None:
    variables = user_variables("prod", simulator.url)
    result = run_task(
        "osipi_backfill_job",
        "backfill",
        variables=variables,
        cwd=tmp_path,
        env=CREDENTIALS,
        job_params={"start": "last tuesday"},
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--start" in result.stderr
