"""Load and save the agent's configuration from a config directory.

`connector.yaml` (optional, hand-written) is the base; `connector_state.json` (the GUI's state) is merged
over it key by key. Secrets are decrypted on load and encrypted on save (config.secrets). Every problem is
reported as `key.path: what is wrong` in one ConfigError, without echoing values (they may be secrets).
"""

from __future__ import annotations

import importlib
import json
import logging
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from iot_connector.config.models import AgentConfig
from iot_connector.config.secrets import SecretBox, SecretError, key_path, reveal_tree
from iot_connector.sources.base import SourceConfig, registered

log = logging.getLogger(__name__)
STATE_FILE = "connector_state.json"
YAML_FILE = "connector.yaml"


class ConfigError(ValueError):
    def __init__(self, problems: list[str], source: str = "configuration"):
        self.problems = problems
        super().__init__(f"invalid {source}:\n  " + "\n  ".join(problems))


def _loc(prefix: str, loc: tuple[Any, ...]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _problems(exc: ValidationError, prefix: str = "") -> list[str]:
    return [f"{_loc(prefix, err['loc'])}: {err['msg']}" for err in exc.errors(include_input=False, include_url=False)]


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        merged[key] = (
            _merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) else value
        )
    return merged


def read_raw(config_dir: Path) -> dict[str, Any]:
    """The merged, still-encrypted mapping from the YAML base and the JSON state."""
    config_dir = Path(config_dir)
    raw: dict[str, Any] = {}
    for name, parse in ((YAML_FILE, yaml.safe_load), (STATE_FILE, json.loads)):
        path = config_dir / name
        if not path.exists():
            continue
        try:
            data = parse(path.read_text()) or {}
        except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(
                [f"{name}: not valid {'YAML' if name == YAML_FILE else 'JSON'} ({_short(exc)})"]
            ) from None
        if not isinstance(data, dict):
            raise ConfigError([f"{name}: the top level must be a mapping of settings, got {type(data).__name__}"])
        raw = _merge(raw, data)
    return raw


def _short(exc: Exception) -> str:
    return str(exc).splitlines()[0][:200]


def _import_plugins(plugins: Any) -> list[str]:
    if plugins is None:
        return []
    if not isinstance(plugins, list) or not all(isinstance(p, str) for p in plugins):
        return ["plugins: must be a list of module names"]
    problems = []
    for i, module in enumerate(plugins):
        try:
            importlib.import_module(module)
        except Exception as exc:
            problems.append(f"plugins[{i}]: cannot import {module!r} ({type(exc).__name__}: {_short(exc)})")
    return problems


def _sources(items: Any, problems: list[str]) -> list[SourceConfig]:
    if items is None:
        return []
    if not isinstance(items, list):
        problems.append("sources: must be a list of source settings")
        return []
    known = registered()
    out: list[SourceConfig] = []
    for i, item in enumerate(items):
        where = f"sources[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be a mapping with at least name and type")
            continue
        kind = item.get("type")
        if kind not in known:
            names = ", ".join(sorted(known)) or "none installed"
            problems.append(f"{where}.type: unknown source type {kind!r} (known: {names})")
            continue
        try:
            out.append(known[kind][0].model_validate(item))
        except ValidationError as exc:
            problems.extend(_problems(exc, where))
    return out


def parse_config(raw: dict[str, Any], box: SecretBox | None = None) -> AgentConfig:
    """Validate a raw mapping (decrypting `enc:` values with `box`) into AgentConfig, or raise ConfigError."""
    problems: list[str] = []
    if box is not None:
        try:
            raw = box.decrypt_tree(raw)
        except SecretError as exc:
            raise ConfigError([str(exc)]) from None
    problems += _import_plugins(raw.get("plugins"))
    sources = _sources(raw.get("sources"), problems)
    try:
        config = AgentConfig.model_validate({**raw, "sources": sources})
    except ValidationError as exc:
        problems += _problems(exc)
    if problems:
        raise ConfigError(problems)
    return config


def load_config(config_dir: Path) -> AgentConfig:
    """The validated config of `config_dir` (defaults when it holds no file: a local Delta sink, no sources)."""
    return parse_config(read_raw(config_dir), SecretBox(key_path(config_dir)))


def save_state(config_dir: Path, config: AgentConfig) -> Path:
    """Write `connector_state.json` (what the GUI edits) with its secrets encrypted, unless
    `security.secrets_encryption` was turned off (and confirmed with allow_plaintext)."""
    config_dir = Path(config_dir)
    config_dir.mkdir(parents=True, exist_ok=True)
    data = config.model_dump(mode="python", exclude_none=True)
    data["sources"] = [s.model_dump(mode="python", exclude_none=True) for s in config.sources]
    if config.security.secrets_encryption.enabled:
        data = SecretBox(key_path(config_dir)).encrypt_tree(data)
    else:
        data = reveal_tree(data)
        log.warning(
            "security.secrets_encryption is off: secrets are written in clear to %s; anyone who can read the "
            "file or a backup of it can read them",
            config_dir / STATE_FILE,
        )
    text = json.dumps(data, indent=2, default=str, sort_keys=False) + "\n"
    path = config_dir / STATE_FILE
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


def json_schemas() -> dict[str, Any]:
    """JSON Schemas for a form-based editor (the GUI): the agent settings, and one per registered source type."""
    return {
        "agent": AgentConfig.model_json_schema(),
        "sources": {name: classes[0].model_json_schema() for name, classes in sorted(registered().items())},
    }
