"""Run a bundle task's wheel entry point exactly the way Databricks runs a `python_wheel_task`.

The task runner (and the Databricks CLI's wheel trampoline) looks the entry point up in the installed
distribution's metadata, sets `sys.argv` to the package name followed by the task's `parameters`, calls the
function and ignores what it returns: only an exception (or a non-zero `SystemExit`) fails the task. So the
call runs in a fresh interpreter and the test reads the exit status that behaviour produces: 0 when the
function returned, non-zero when it raised.

Only what cannot exist off Databricks is replaced: `${var.*}` by the target's values (plus the overrides a
user would set, such as the PI Web API URL), `${workspace.*}` by local paths, `{{job.parameters.*}}` by the
job's parameter defaults or the values a run passes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.bundle.bundle_files import ROOT, bundle, jobs

# What the wheel task does, and nothing more (a return value is ignored; an exception fails the task).
TRAMPOLINE = """
import sys
from importlib import metadata

package, entry_point, *parameters = sys.argv[1:]
sys.argv = [package, *parameters]
matches = [ep for ep in metadata.distribution(package).entry_points if ep.name == entry_point]
if not matches:
    raise SystemExit(f"no entry point {entry_point!r} in {package}")
matches[0].load()()
"""

_VAR = re.compile(r"\$\{var\.([A-Za-z0-9_]+)\}")
_JOB_PARAM = re.compile(r"\{\{job\.parameters\.([A-Za-z0-9_]+)\}\}")
WORKSPACE = {
    "${workspace.file_path}": str(ROOT),  # the bundle's files as deployed: the shipped config is read as is
    "${workspace.current_user.short_name}": "tester",
}


def target_variables(target: str, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """The bundle variables of `target`: defaults, then the target's values, then `overrides` (--var)."""
    config = bundle()
    values: dict[str, Any] = {name: spec.get("default") for name, spec in config["variables"].items()}
    values.update(config["targets"][target].get("variables", {}))
    values.update(overrides or {})
    resolved = {}
    for name, value in values.items():
        if isinstance(value, str | int):
            text = str(value)
            for ref, local in WORKSPACE.items():
                text = text.replace(ref, local)
            resolved[name] = text
    return resolved


def task_of(job_key: str, task_key: str) -> dict[str, Any]:
    job = next(job for _, key, job in jobs() if key == job_key)
    return next(t for t in job["tasks"] if t["task_key"] == task_key)


def task_parameters(
    job_key: str, task_key: str, variables: dict[str, str], job_params: dict[str, str] | None = None
) -> list[str]:
    """The task's `python_wheel_task.parameters` as the job run passes them."""
    job = next(job for _, key, job in jobs() if key == job_key)
    params = {p["name"]: str(p["default"]) for p in job.get("parameters", [])} | (job_params or {})
    out = []
    for arg in task_of(job_key, task_key)["python_wheel_task"]["parameters"]:
        text = str(arg)
        for ref, local in WORKSPACE.items():
            text = text.replace(ref, local)
        text = _VAR.sub(lambda m: variables[m.group(1)], text)
        out.append(_JOB_PARAM.sub(lambda m: params[m.group(1)], text))
    return out


def run_task(
    job_key: str,
    task_key: str,
    *,
    variables: dict[str, str],
    cwd: Path,
    job_params: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
    parameters: list[str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """Call the task's entry point like the wheel task does; `parameters` replaces the task's own."""
    wheel = task_of(job_key, task_key)["python_wheel_task"]
    argv = parameters if parameters is not None else task_parameters(job_key, task_key, variables, job_params)
    return subprocess.run(
        [sys.executable, "-c", TRAMPOLINE, wheel["package_name"], wheel["entry_point"], *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        check=False,
    )
