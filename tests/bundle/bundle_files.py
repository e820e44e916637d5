"""Reading the bundle the way the Databricks CLI does, offline: YAML files, jobs, tasks, `${...}` references.

test_cli_validate.py runs the real `databricks bundle validate` against a stub workspace; these file-level
checks add what the CLI leaves to the workspace (shared/reference/bundle.md §2 lists what they cover).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
BUNDLE_FILE = ROOT / "databricks.yml"
SCHEMA_FILE = ROOT.parent / "shared" / "databricks" / "bundle-jsonschema.json"

VAR_REF = re.compile(r"\$\{var\.([A-Za-z0-9_-]+)")


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def bundle() -> dict[str, Any]:
    return load_yaml(BUNDLE_FILE)


def included_files() -> list[Path]:
    """Every file matched by the bundle's `include` globs (relative to the bundle root)."""
    files: list[Path] = []
    for pattern in bundle().get("include", []):
        files += sorted(ROOT.glob(pattern))
    return files


def all_config_files() -> list[Path]:
    return [BUNDLE_FILE, *included_files()]


def jobs() -> Iterator[tuple[Path, str, dict[str, Any]]]:
    """(file, job key, job dict) for every job of every included file."""
    for path in included_files():
        for key, job in (load_yaml(path).get("resources", {}).get("jobs") or {}).items():
            yield path, key, job


def tasks() -> Iterator[tuple[Path, str, dict[str, Any]]]:
    for path, key, job in jobs():
        for task in job.get("tasks", []):
            yield path, key, task


def strings(node: Any) -> Iterator[str]:
    """Every string value (and key) in a YAML tree."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for k, v in node.items():
            yield from strings(k)
            yield from strings(v)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def var_refs(node: Any) -> set[str]:
    return {m.group(1) for s in strings(node) for m in VAR_REF.finditer(s)}


# The CLI schema writes its `${...}` patterns in RE2 syntax (\p{L}, \p{N}); Python's `re` has no \p classes.
# Inside a class, letters-or-digits is `\w` without `_`; alone, a letter is `\w` without digits and `_`.
_RE2_CLASSES = {r"[\p{L}\p{N}]": r"[^\W_]", r"\p{L}": r"[^\W\d_]", r"\p{N}": r"\d"}


@cache
def _compile_re2(pattern: str) -> re.Pattern[str]:
    for re2, python in _RE2_CLASSES.items():
        pattern = pattern.replace(re2, python)
    return re.compile(pattern)


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict) -> Iterator[jsonschema.ValidationError]:
    if isinstance(instance, str) and not _compile_re2(pattern).search(instance):
        yield jsonschema.ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def schema_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    base = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
    validator_class = jsonschema.validators.extend(base, {"pattern": _pattern})
    return validator_class(schema)


def _leaves(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """oneOf[<type>, ${...}-string] hides the real causes: keep the branch whose type matched, recurse into it."""
    if not error.context:
        return [error]
    branches: dict[object, list[jsonschema.ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    wrong_type = {"type", "pattern"}
    matching = [
        errors
        for errors in branches.values()
        if not any(e.validator in wrong_type and not e.relative_path for e in errors)
    ]
    if not matching:
        return [error]
    return [leaf for sub in matching[0] for leaf in _leaves(sub)]


def schema_errors(document: dict[str, Any]) -> list[str]:
    """One readable line per schema violation: the path in the YAML and the reason."""
    out = []
    for error in schema_validator().iter_errors(document):
        for leaf in _leaves(error):
            where = "/".join(str(p) for p in leaf.absolute_path) or "<root>"
            out.append(f"{where}: {leaf.message}")
    return out
