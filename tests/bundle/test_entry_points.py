"""Every wheel entry point a job names exists in setup.py and accepts the subcommand and flags the job passes."""

from __future__ import annotations

import ast
import re
import subprocess
import sys

import pytest

from tests.bundle.bundle_files import ROOT, tasks

SETUP = ROOT / "setup.py"


def _setup_keywords() -> dict[str, object]:
    """setup()'s literal keyword arguments, read without running setup.py."""
    tree = ast.parse(SETUP.read_text(encoding="utf-8"))
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "setup")
    out = {}
    for kw in call.keywords:
        try:
            out[kw.arg] = ast.literal_eval(kw.value)
        except ValueError:
            continue  # computed values (long_description, install_requires list name): not needed here
    return out


def console_scripts() -> dict[str, str]:
    """{script name: "module:function"} from setup.py's entry_points."""
    scripts = _setup_keywords()["entry_points"]["console_scripts"]
    return {name.strip(): target.strip() for name, _, target in (s.partition("=") for s in scripts)}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


WHEEL_TASKS = [(key, task) for _, key, task in tasks() if "python_wheel_task" in task]
IDS = [f"{key}.{task['task_key']}" for key, task in WHEEL_TASKS]


def test_jobs_use_wheel_tasks() -> None:
    assert WHEEL_TASKS, "no python_wheel_task found: the entry point checks below would prove nothing"


@pytest.mark.parametrize(("key", "task"), WHEEL_TASKS, ids=IDS)
def test_package_and_entry_point_exist_in_setup_py(key: str, task: dict) -> None:
    wheel_task = task["python_wheel_task"]
    assert _normalise(wheel_task["package_name"]) == _normalise(_setup_keywords()["name"]), (
        f"{key}: package_name {wheel_task['package_name']!r} is not the distribution setup.py builds"
    )
    assert wheel_task["entry_point"] in console_scripts(), (
        f"{key}: entry point {wheel_task['entry_point']!r} is not in setup.py console_scripts {sorted(console_scripts())}"
    )


def _help(target: str, subcommand: str) -> subprocess.CompletedProcess[str]:
    """Run `<entry point> <subcommand> --help` the way the console script would, in a fresh interpreter."""
    module, _, function = target.partition(":")
    code = f"import sys; from {module} import {function} as main; sys.exit(main())"
    return subprocess.run(
        [sys.executable, "-c", code, subcommand, "--help"], capture_output=True, text=True, timeout=60, cwd=ROOT
    )


@pytest.mark.parametrize(("key", "task"), WHEEL_TASKS, ids=IDS)
def test_subcommand_and_flags_are_accepted(key: str, task: dict) -> None:
    wheel_task = task["python_wheel_task"]
    target = console_scripts()[wheel_task["entry_point"]]
    subcommand = wheel_task["parameters"][0]
    result = _help(target, subcommand)
    assert result.returncode == 0, (
        f"{key}: `{wheel_task['entry_point']} {subcommand} --help` failed (exit {result.returncode}); "
        f"the CLI must provide the subcommand this job calls:\n{result.stderr[-1500:]}"
    )
    flags = {p for p in wheel_task["parameters"] if p.startswith("--")}
    missing = sorted(f for f in flags if not re.search(rf"(?<![\w-]){re.escape(f)}(?![\w-])", result.stdout))
    assert not missing, f"{key}: `{subcommand}` does not document the flags {missing} the job passes"
