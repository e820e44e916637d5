"""The bundle files against the Databricks CLI's own JSON schema and the typed job classes of databricks-bundles."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from databricks.bundles.jobs import Job

from tests.bundle.bundle_files import ROOT, SCHEMA_FILE, all_config_files, jobs, load_yaml, schema_errors

needs_schema = pytest.mark.skipif(
    not SCHEMA_FILE.exists(),
    reason=f"optional: the CLI bundle schema is not at {SCHEMA_FILE} (shared reference, not shipped)",
)


def _name(path: Path) -> str:
    return str(path.relative_to(ROOT))


@needs_schema
@pytest.mark.parametrize("path", all_config_files(), ids=_name)
def test_file_matches_cli_schema(path: Path) -> None:
    assert schema_errors(load_yaml(path)) == []


@needs_schema
def test_schema_check_reports_typos_with_their_location() -> None:
    """The validator is only worth having if a misspelt key or a bad enum fails with a message that says where."""
    key = "osipi_connector_job"
    broken = copy.deepcopy(next(job for _, k, job in jobs() if k == key))
    broken["max_concurent_runs"] = 1
    broken["schedule"]["timezone"] = broken["schedule"].pop("timezone_id")
    broken["tasks"][0]["python_wheel_task"]["parameters"] = "run"
    errors = schema_errors({"resources": {"jobs": {key: broken}}})
    joined = "\n".join(errors)
    assert f"resources/jobs/{key}: Additional properties are not allowed ('max_concurent_runs'" in joined
    assert "'timezone_id' is a required property" in joined
    assert f"resources/jobs/{key}/tasks/0/python_wheel_task/parameters" in joined


@needs_schema
def test_schema_accepts_variable_references_and_rejects_unknown_ones() -> None:
    base = {"resources": {"jobs": {"j": {"max_concurrent_runs": "${var.n}"}}}}
    assert schema_errors(base) == []
    base["resources"]["jobs"]["j"]["max_concurrent_runs"] = "${nothing.n}"
    assert schema_errors(base) != []


@pytest.mark.parametrize(("path", "key", "job"), list(jobs()), ids=lambda v: v if isinstance(v, str) else "")
def test_job_loads_into_typed_classes(path: Path, key: str, job: dict) -> None:
    typed = Job.from_dict(job)
    assert typed.tasks, f"{_name(path)}: job {key} has no tasks"
    assert typed.max_concurrent_runs == 1, f"{_name(path)}: {key} must not overlap with itself (watermarks)"
