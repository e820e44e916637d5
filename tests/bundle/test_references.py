"""What `databricks bundle validate` resolves and the JSON schema cannot: references between keys and files."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from tests.bundle.bundle_files import ROOT, all_config_files, bundle, jobs, load_yaml, strings, tasks, var_refs

WORKSPACE_FILE = re.compile(r"\$\{workspace\.file_path\}/([^\s\"']+)")
JOB_PARAM = re.compile(r"\{\{\s*job\.parameters\.([A-Za-z0-9_]+)\s*\}\}")


def test_every_variable_reference_is_declared() -> None:
    declared = set(bundle()["variables"])
    for path in all_config_files():
        unknown = var_refs(load_yaml(path)) - declared
        assert not unknown, f"{path.name} uses undeclared variables {sorted(unknown)}; declare them in databricks.yml"


def test_every_declared_variable_is_used() -> None:
    used = set().union(*(var_refs(load_yaml(p)) for p in all_config_files()))
    unused = set(bundle()["variables"]) - used
    assert not unused, f"variables {sorted(unused)} are declared but nothing uses them"


def test_every_variable_has_a_value_in_every_target() -> None:
    config = bundle()
    for target, body in config["targets"].items():
        overrides = (body or {}).get("variables", {})
        for name, spec in config["variables"].items():
            has_default = "default" in spec or "lookup" in spec
            assert has_default or name in overrides, f"target {target!r} gives no value to variable {name!r}"


def test_targets_follow_the_cli_mode_rules() -> None:
    targets = bundle()["targets"]
    assert [t for t, body in targets.items() if body.get("default")] == ["dev"]
    assert targets["dev"]["mode"] == "development"
    prod = targets["prod"]
    assert prod["mode"] == "production"
    # The CLI refuses a production target without a shared root_path (validate_target_mode.go).
    assert prod["workspace"]["root_path"] == "/Workspace/production/osipi-connector"
    assert prod["run_as"] == {"service_principal_name": "${var.service_principal_name}"}
    assert {p["level"] for p in prod["permissions"]} <= {"CAN_VIEW", "CAN_RUN", "CAN_MANAGE"}


@pytest.mark.parametrize(("path", "key", "job"), list(jobs()), ids=lambda v: v if isinstance(v, str) else "")
def test_task_keys_and_dependencies_resolve(path: Path, key: str, job: dict) -> None:
    task_keys = [t["task_key"] for t in job["tasks"]]
    assert not [k for k, n in Counter(task_keys).items() if n > 1], f"{key}: duplicate task_key"
    clusters = {c["job_cluster_key"] for c in job.get("job_clusters", [])}
    environments = {e["environment_key"] for e in job.get("environments", [])}
    for task in job["tasks"]:
        for dep in task.get("depends_on", []):
            assert dep["task_key"] in task_keys, f"{key}.{task['task_key']} depends on unknown {dep['task_key']}"
            assert dep["task_key"] != task["task_key"]
        if "job_cluster_key" in task:
            assert task["job_cluster_key"] in clusters, f"{key}.{task['task_key']}: unknown job_cluster_key"
        if "environment_key" in task:
            assert task["environment_key"] in environments, f"{key}.{task['task_key']}: unknown environment_key"
        assert ("job_cluster_key" in task) != ("environment_key" in task), (
            f"{key}.{task['task_key']}: pick one compute: a job cluster or a serverless environment"
        )


@pytest.mark.parametrize(("path", "key", "job"), list(jobs()), ids=lambda v: v if isinstance(v, str) else "")
def test_job_parameter_references_are_defined(path: Path, key: str, job: dict) -> None:
    defined = {p["name"] for p in job.get("parameters", [])}
    used = {m.group(1) for s in strings(job["tasks"]) for m in JOB_PARAM.finditer(s)}
    assert used <= defined, f"{key} uses job parameters {sorted(used - defined)} it does not define"
    assert defined <= used, f"{key} defines job parameters {sorted(defined - used)} no task reads"


def test_files_named_by_jobs_exist() -> None:
    """Notebooks and python files relative to the job file; `${workspace.file_path}/...` relative to the root."""
    checked = 0
    for path, key, task in tasks():
        for field in ("notebook_task", "spark_python_task"):
            if field in task:
                rel = task[field].get("notebook_path") or task[field]["python_file"]
                candidates = [(path.parent / rel).resolve(), (path.parent / f"{rel}.py").resolve()]
                assert any(c.exists() for c in candidates), f"{key}.{task['task_key']}: {rel} not found"
                checked += 1
        for ref in (m.group(1) for s in strings(task) for m in WORKSPACE_FILE.finditer(s)):
            assert (ROOT / ref).is_file(), f"{key}.{task['task_key']} reads {ref}, which is not in the repository"
            checked += 1
    assert checked, "no job names a file: this check would prove nothing"


def test_wheel_libraries_point_at_the_artifact_output() -> None:
    """Jobs install ../dist/*.whl: the folder `python -m build --wheel` writes, relative to resources/."""
    artifacts = bundle()["artifacts"]
    assert [a["type"] for a in artifacts.values()] == ["whl"]
    wheel_dir = (ROOT / next(iter(artifacts.values())).get("path", ".") / "dist").resolve()
    for path, key, job in jobs():
        specs = [lib["whl"] for t in job["tasks"] for lib in t.get("libraries", []) if "whl" in lib]
        specs += [d for e in job.get("environments", []) for d in e["spec"].get("dependencies", [])]
        assert specs, f"{key} installs no wheel"
        for spec in specs:
            assert (path.parent / spec).resolve().parent == wheel_dir, f"{key}: {spec} is not in {wheel_dir}"
            assert spec.endswith(".whl")
