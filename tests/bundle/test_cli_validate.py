"""The official Databricks CLI (built by tools/databricks-cli.sh) validates and summarises the bundle for both
targets, offline: tests/bundle/workspace_stub.py answers the few workspace calls it makes on 127.0.0.1.

Assertions are on what the CLI prints (its diagnostics, exit code and resolved configuration), never on the
stub, which only plays a fresh workspace: the deploying identity, the prod service principal, folders.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.bundle.bundle_files import ROOT, bundle, jobs
from tests.bundle.workspace_stub import Identity, WorkspaceStub

pytestmark = pytest.mark.integration

CLI = ROOT / "build" / "bin" / "databricks"
SP_NAME = "osipi-connector"  # targets.prod.variables.service_principal_name.lookup.service_principal
SP_APP_ID = "9f1c2b7e-3d4a-4e5f-8a6b-0c1d2e3f4a5b"
# dev is deployed by a person; prod by the service principal it runs as (docs/deployment.md).
DEPLOYERS = {
    "dev": Identity("dev.user@example.com", "Dev User"),
    "prod": Identity(SP_APP_ID, SP_NAME, service_principal=True),
}
TARGETS = sorted(DEPLOYERS)
PROBLEM_WORDS = ("Error:", "Warning:", "Recommendation:", "Warn:")


@dataclass
class CliRun:
    returncode: int
    stdout: str
    stderr: str
    unanswered: list[str]

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def json(self) -> dict[str, Any]:
        assert self.returncode == 0, self.output
        return json.loads(self.stdout)


def run_cli(target: str, *args: str, root: Path = ROOT, service_principals: dict[str, str] | None = None) -> CliRun:
    """`databricks bundle ARGS --target TARGET` in ROOT, authenticated against a fresh stub workspace."""
    if not os.access(CLI, os.X_OK):
        pytest.fail(
            f"{CLI.relative_to(ROOT)} is missing: build it with `bash tools/databricks-cli.sh` (make test does)"
        )
    sps = {SP_NAME: SP_APP_ID} if service_principals is None else service_principals
    with WorkspaceStub(DEPLOYERS[target], sps) as stub, tempfile.TemporaryDirectory() as home:
        config = Path(home, "databrickscfg")
        config.write_text("")  # no user profile is read
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "DATABRICKS_HOST": stub.host,
            "DATABRICKS_TOKEN": "dapi-offline-test",
            "DATABRICKS_CONFIG_FILE": str(config),
        }
        done = subprocess.run(
            [str(CLI), "bundle", *args, "--target", target],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        return CliRun(done.returncode, done.stdout, done.stderr, list(stub.unanswered))


@pytest.fixture(scope="module", params=TARGETS)
def target(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def resolved(target: str) -> dict[str, Any]:
    """The configuration `bundle validate -o json` resolved for the target."""
    return run_cli(target, "validate", "--strict", "-o", "json").json()


def resolved_tasks(config: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for key, job in config["resources"]["jobs"].items():
        for task in job["tasks"]:
            yield key, task


def dangling_dependencies(config: dict[str, Any]) -> list[str]:
    """`job.task -> missing` for every depends_on naming no task of its job (the CLI does not check this)."""
    out = []
    for key, job in config["resources"]["jobs"].items():
        keys = {task["task_key"] for task in job["tasks"]}
        for task in job["tasks"]:
            out += [
                f"{key}.{task['task_key']} -> {dep['task_key']}"
                for dep in task.get("depends_on", [])
                if dep["task_key"] not in keys
            ]
    return out


def flag(parameters: list[str], name: str) -> str:
    return parameters[parameters.index(name) + 1]


# -- the shipped bundle ---------------------------------------------------------------------------------------


def test_validate_passes_without_any_diagnostic(target: str) -> None:
    run = run_cli(target, "validate", "--strict")
    assert run.returncode == 0, run.output
    assert "Validation OK!" in run.stdout
    assert not [word for word in PROBLEM_WORDS if word in run.output], run.output
    assert run.unanswered == [], "the CLI called endpoints the stub does not model"


def test_every_job_is_resolved_with_its_wheel_tasks(resolved: dict[str, Any]) -> None:
    assert set(resolved["resources"]["jobs"]) == {key for _, key, _ in jobs()}
    assert dangling_dependencies(resolved) == []
    for key, task in resolved_tasks(resolved):
        wheel = task["python_wheel_task"]
        # The wheel trampoline loads `entry_point` from the distribution named `package_name`.
        scripts = importlib.metadata.distribution(wheel["package_name"]).entry_points.select(group="console_scripts")
        assert wheel["entry_point"] in scripts.names, (key, task["task_key"])
        assert not [p for p in wheel["parameters"] if "${" in p], (key, task["task_key"], wheel["parameters"])


def test_task_parameters_carry_the_target_variables(target: str, resolved: dict[str, Any]) -> None:
    variables = {name: spec["value"] for name, spec in resolved["variables"].items()}
    declared = bundle()["targets"][target]["variables"]
    assert variables["pi_web_api_url"] == declared["pi_web_api_url"]
    short_name = resolved["workspace"]["current_user"]["short_name"]
    expected_schema = "bronze_" + short_name if target == "dev" else "bronze"
    config_file = resolved["workspace"]["file_path"] + "/config/connector_config.yaml"
    if target == "dev":
        assert config_file.startswith(f"/Workspace/Users/{DEPLOYERS['dev'].user_name}/.bundle/osipi-connector/dev/")
    else:
        assert config_file == "/Workspace/production/osipi-connector/files/config/connector_config.yaml"
    for key, task in resolved_tasks(resolved):
        parameters = task["python_wheel_task"]["parameters"]
        assert flag(parameters, "--config") == config_file, (key, task["task_key"])
        assert flag(parameters, "--catalog") == variables["catalog"] == "main"
        assert flag(parameters, "--schema") == expected_schema
        if "--pi-web-api-url" in parameters:
            assert flag(parameters, "--pi-web-api-url") == declared["pi_web_api_url"]


def test_job_clusters_get_the_cluster_variables(resolved: dict[str, Any]) -> None:
    defaults = {name: spec.get("default") for name, spec in bundle()["variables"].items()}
    clusters = [c["new_cluster"] for job in resolved["resources"]["jobs"].values() for c in job.get("job_clusters", [])]
    assert len(clusters) == 3  # classic hourly, backfill, maintenance; the serverless job has none
    for cluster in clusters:
        assert cluster["spark_version"] == defaults["spark_version"]
        assert cluster["node_type_id"] == defaults["node_type_id"]
        assert cluster["autoscale"] == {"min_workers": defaults["min_workers"], "max_workers": defaults["max_workers"]}


def test_a_var_flag_reaches_every_cluster() -> None:
    config = run_cli("prod", "validate", "-o", "json", "--var", "node_type_id=Standard_D4ds_v5").json()
    node_types = {
        c["new_cluster"]["node_type_id"]
        for job in config["resources"]["jobs"].values()
        for c in job.get("job_clusters", [])
    }
    assert node_types == {"Standard_D4ds_v5"}


def test_schedules_are_paused_in_dev_and_one_hourly_job_runs_in_prod(target: str, resolved: dict[str, Any]) -> None:
    shipped = {key: job.get("schedule") for _, key, job in jobs()}
    schedules = {key: job.get("schedule") for key, job in resolved["resources"]["jobs"].items()}
    assert {k for k, s in schedules.items() if s} == {k for k, s in shipped.items() if s}
    for key, schedule in schedules.items():
        if schedule:
            assert schedule["quartz_cron_expression"] == shipped[key]["quartz_cron_expression"]
            assert schedule["timezone_id"] == "UTC"
    # A schedule without pause_status is active (the Jobs API default).
    active = {k for k, s in schedules.items() if s and s.get("pause_status", "UNPAUSED") == "UNPAUSED"}
    if target == "dev":
        assert active == set(), "mode: development must leave no schedule running"
    else:
        assert active == {"osipi_connector_job", "osipi_maintenance_job"}


def test_prod_runs_as_the_looked_up_service_principal(target: str, resolved: dict[str, Any]) -> None:
    for key, job in resolved["resources"]["jobs"].items():
        if target == "prod":
            assert job["run_as"] == {"service_principal_name": SP_APP_ID}, key
            assert {"group_name": "osipi-operators", "level": "CAN_MANAGE_RUN"} in job["permissions"], key
            assert not job["name"].startswith("[dev")
        else:
            assert "run_as" not in job, key  # dev jobs run as the deploying user
            assert job["name"].startswith("[dev dev_user] "), key


def test_summary_lists_the_resolved_jobs(target: str, resolved: dict[str, Any]) -> None:
    summary = run_cli(target, "summary", "-o", "json").json()
    assert summary["resources"]["jobs"].keys() == resolved["resources"]["jobs"].keys()
    for key, job in summary["resources"]["jobs"].items():
        assert job["tasks"] == resolved["resources"]["jobs"][key]["tasks"], key
        assert job.get("job_clusters") or job.get("environments"), key  # the tasks have compute
    text = run_cli(target, "summary")
    assert text.returncode == 0, text.output
    for job in summary["resources"]["jobs"].values():
        assert f"Name: {job['name']}\n      URL:  (not deployed)" in text.stdout


def test_prod_fails_when_the_service_principal_does_not_exist() -> None:
    run = run_cli("prod", "validate", service_principals={})
    assert run.returncode != 0
    assert f'service principal named "{SP_NAME}" does not exist' in run.output


# -- broken copies of the bundle --------------------------------------------------------------------------------


@pytest.fixture
def bundle_copy(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "databricks.yml", tmp_path)
    for folder in ("resources", "config"):
        shutil.copytree(ROOT / folder, tmp_path / folder)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_a_misspelt_variable_reference_fails(bundle_copy: Path) -> None:
    edit(bundle_copy / "resources" / "osipi_maintenance.job.yml", '"${var.schema}"', '"${var.shema}"')
    for target in TARGETS:
        run = run_cli(target, "validate", root=bundle_copy)
        assert run.returncode != 0
        assert "reference does not exist: ${var.shema}" in run.output


def test_an_undefined_cluster_key_and_an_unknown_field_fail_in_strict_mode(bundle_copy: Path) -> None:
    hourly = bundle_copy / "resources" / "osipi_connector.job.yml"
    edit(hourly, "          job_cluster_key: pi_cluster", "          job_cluster_key: pi_clustr")
    edit(hourly, "max_concurrent_runs: 1", "max_concurent_runs: 1")
    run = run_cli("dev", "validate", "--strict", root=bundle_copy)
    assert run.returncode != 0
    assert "job_cluster_key pi_clustr is not defined" in run.output
    assert "unknown field: max_concurent_runs" in run.output
    assert "in resources/osipi_connector.job.yml:" in run.output  # the CLI names file and line


def test_a_dependency_on_a_missing_task_is_caught_here_not_by_the_cli(bundle_copy: Path) -> None:
    """CLI 1.12.1 leaves `depends_on` to the Jobs API (rejected at deploy), so the resolved jobs are checked here."""
    hourly = bundle_copy / "resources" / "osipi_connector.job.yml"
    edit(hourly, "            - task_key: af_hierarchy_and_tags", "            - task_key: af_hierarchy_and_tag")
    run = run_cli("dev", "validate", "--strict", "-o", "json", root=bundle_copy)
    assert run.returncode == 0, "the CLI now checks depends_on itself: assert its error here instead"
    assert dangling_dependencies(run.json()) == ["osipi_connector_job.timeseries -> af_hierarchy_and_tag"]
