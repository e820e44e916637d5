"""The connector's configuration: one validated model for the YAML file and for the guide's flat dict.

Every default lives here (and nowhere else); `config/connector_config.yaml` documents each key. Errors are
`ConfigError`s whose message names the key path and what to change, because a job that fails at 3 a.m. on
"validation error" is a job nobody can fix.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator

from osipi_connector.piwebapi.pitime import UTC, PITimeError, parse_pi_time
from osipi_connector.piwebapi.settings import ClientSettings, RetrySettings

Mode = Literal["incremental", "full", "backfill"]
# computed by PI per tag; off unless asked for (extraction.include_<name>, --datasets)
COMPUTED_DATASETS = ("interpolated", "summary", "current_value", "point_attributes")
# the AF catalogue around the hierarchy, snapshots of extraction.af_database; off unless asked for
AF_CATALOG_DATASETS = ("templates", "categories", "analyses", "af_tables", "annotations", "units_of_measure")
OPTIONAL_DATASETS = (*COMPUTED_DATASETS, *AF_CATALOG_DATASETS)  # each has an extraction.include_<name> switch
# also the order a run writes them in
DATASETS = ("tags", "af", "timeseries", "event_frames", *COMPUTED_DATASETS, *AF_CATALOG_DATASETS)
TAG_DATASETS = ("timeseries", "interpolated", "summary", "current_value", "point_attributes")  # need the tag list
SummaryType = Literal[
    "Total", "Average", "Minimum", "Maximum", "Range", "StdDev", "PopulationStdDev", "Count", "PercentGood"
]
DEFAULT_SUMMARY_TYPES: tuple[SummaryType, ...] = ("Average", "Minimum", "Maximum", "Total", "Count", "PercentGood")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)\s*$", re.IGNORECASE)
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


class ConfigError(ValueError):
    """A configuration that cannot run; the message names the key path and the fix. Never contains secrets."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


def parse_duration(text: str | int | float | timedelta) -> timedelta:
    """`"2h"`, `"30m"`, `"1d"`, `"90s"`, `"1w"` or a number of seconds."""
    if isinstance(text, timedelta):
        return text
    if isinstance(text, int | float):
        return timedelta(seconds=float(text))
    match = _DURATION.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a duration — write a number and a unit: 90s, 30m, 2h, 1d, 1w")
    return timedelta(seconds=float(match[1]) * _SECONDS[match[2].lower()])


def resolve_time(value: str | datetime, now: datetime) -> datetime:
    """A config time (ISO-8601, a date, or a PI relative time such as `*-1d`, `t`) as an aware UTC datetime."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_pi_time(str(value), now)


class PIWebAPIConfig(ClientSettings):
    """`pi_web_api`: the client settings plus where the secrets come from (never the secrets themselves,
    except through the Python API's flat keys)."""

    secrets_scope: str | None = None
    username_key: str = "pi_username"
    password_key: str = "pi_password"
    oauth_token_key: str = "pi_token"
    oauth_client_id_key: str = "pi_client_id"
    oauth_client_secret_key: str = "pi_client_secret"
    # Inline credentials: only for the Python API's flat keys (pi_username / pi_password); prefer secrets.
    username: str | None = None
    password: SecretStr | None = None

    def client_settings(self, retry: RetrySettings) -> ClientSettings:
        fields = {name: getattr(self, name) for name in ClientSettings.model_fields if name != "retry"}
        return ClientSettings(**fields, retry=retry)


class UnityCatalogConfig(_Strict):
    catalog: str = "main"
    schema_: str = Field("bronze", alias="schema")
    checkpoint_schema: str = "checkpoints"
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("catalog", "schema_", "checkpoint_schema")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError(f"{value!r} is not a plain identifier — use letters, digits and _")
        return value


def _whole_seconds(value: Any) -> timedelta:
    span = parse_duration(value)
    if span < timedelta(seconds=1) or span % timedelta(seconds=1):
        raise ValueError(f"{span} is not a whole number of seconds ≥ 1s — e.g. 1h, 15m, 30s")
    return span


class InterpolatedConfig(_Strict):
    """`extraction.interpolated`: the grid PI interpolates on (aligned to the epoch: 1h = every full hour)."""

    interval: timedelta = timedelta(hours=1)

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> timedelta:
        return _whole_seconds(value)


class SummaryConfig(_Strict):
    """`extraction.summary`: the statistics PI computes per completed interval of `duration`."""

    duration: timedelta = timedelta(hours=1)
    types: list[SummaryType] = Field(default_factory=lambda: list(DEFAULT_SUMMARY_TYPES), min_length=1)
    calculation_basis: Literal["TimeWeighted", "EventWeighted"] = "TimeWeighted"

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return _whole_seconds(value)

    @field_validator("types")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class ExtractionConfig(_Strict):
    tags: list[str] = Field(default_factory=list, description="point WebIDs")
    tag_names: list[str] = Field(default_factory=list, description="point names on the data server")
    name_filter: str | None = None
    data_server: str | None = None  # name, path or WebID; default: the first data server
    batch_size: int = Field(100, ge=1, le=5000)
    max_count_per_tag: int = Field(10_000, ge=2, le=150_000)
    mode: Mode = "incremental"
    start_date: str | datetime = "*-1d"
    end_date: str | datetime | None = None
    lookback: timedelta = timedelta(hours=2)
    af_database: str | None = None  # \\server\database path or WebID
    include_af: bool = True
    include_event_frames: bool = True
    # Closed event frames still waiting for an acknowledgement (and frames the table holds as in progress)
    # are re-read by WebID for this long after they ended: an acknowledgement often comes hours after the
    # frame left the lookback window.
    event_frame_recheck: timedelta = timedelta(days=7)
    # Datasets computed by the PI server, off by default (each is one more request per tag group and run).
    include_interpolated: bool = False
    include_summary: bool = False
    include_current_value: bool = False
    include_point_attributes: bool = False
    # The AF catalogue of af_database, off by default (a few requests each; annotations follow event frames'
    # window): templates, categories, analyses, AF tables, event-frame annotations, units of measure.
    include_templates: bool = False
    include_categories: bool = False
    include_analyses: bool = False
    include_af_tables: bool = False
    include_annotations: bool = False
    include_units_of_measure: bool = False
    interpolated: InterpolatedConfig = Field(default_factory=InterpolatedConfig)
    summary: SummaryConfig = Field(default_factory=SummaryConfig)
    # PI Web API Stream Updates as the change feed of pi_timeseries (incremental runs): edits and removals older
    # than the lookback land too (extract/change_feed.py); off by default
    change_feed: Literal["stream_updates"] | None = None
    # Whose clock ends a window: the PI data server's (ServerTime) so a skewed job clock cannot skip or
    # re-read data, or this machine's, only by choice (a server that does not report its time).
    clock: Literal["server", "local"] = "server"

    @field_validator("change_feed", mode="before")
    @classmethod
    def _change_feed(cls, value: Any) -> Any:
        """`off` (YAML reads it as false), `none` or empty: no change feed."""
        return None if value in (False, "", "off", "none") else value

    @field_validator("lookback", "event_frame_recheck", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("start_date", "end_date")
    @classmethod
    def _time(cls, value: str | datetime | None) -> str | datetime | None:
        if value is not None and not isinstance(value, datetime):
            try:
                parse_pi_time(str(value), datetime.now(UTC))
            except PITimeError:
                raise ValueError(
                    f"{value!r} is not a time — use ISO-8601 (2025-01-01T00:00:00Z) or PI time (*-1d, t, y)"
                ) from None
        return value

    @model_validator(mode="after")
    def _selection(self) -> ExtractionConfig:
        if not (self.tags or self.tag_names or self.name_filter):
            raise ValueError("no tags selected — set extraction.tags (WebIDs), tag_names or name_filter")
        return self


class PerformanceConfig(_Strict):
    workers: int = Field(4, ge=1, le=64, description="threads running work units (tag group × window)")
    max_window: timedelta = Field(timedelta(days=1), description="longest time window of one work unit")
    max_values_per_request: int = Field(
        100_000, ge=1000, description="values one /batch answer may hold: lowers maxCount per tag (memory)"
    )
    commit_rows: int = Field(
        500_000, ge=1, description="rows of one MERGE commit (two commits are held: one written, one buffered)"
    )
    distributed: bool | Literal["auto"] = Field(
        "auto", description="timeseries units on Spark executors (auto: with the Spark sink, not on serverless)"
    )

    @field_validator("max_window", mode="before")
    @classmethod
    def _window(cls, value: Any) -> timedelta:
        window = parse_duration(value)
        if window <= timedelta(0):
            raise ValueError("must be positive — e.g. 1d")
        return window


class LocalConfig(_Strict):
    lakehouse_root: Path = Path("./lakehouse")


class ConnectorConfig(_Strict):
    pi_web_api: PIWebAPIConfig
    unity_catalog: UnityCatalogConfig = Field(default_factory=UnityCatalogConfig)
    extraction: ExtractionConfig
    performance: PerformanceConfig = Field(default_factory=PerformanceConfig)
    retry: RetrySettings = Field(default_factory=RetrySettings)
    local: LocalConfig = Field(default_factory=LocalConfig)

    @model_validator(mode="before")
    @classmethod
    def _empty_sections(cls, data: Any) -> Any:
        """A section whose keys are all commented out reads as null in YAML: use its defaults."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data

    @model_validator(mode="after")
    def _one_retry(self) -> ConnectorConfig:
        if "retry" in self.pi_web_api.model_fields_set:
            raise ValueError("pi_web_api.retry is not read — move it to the top-level `retry` section")
        return self

    def client_settings(self) -> ClientSettings:
        settings = self.pi_web_api.client_settings(self.retry)
        if "max_connections" not in self.pi_web_api.model_fields_set:
            settings.max_connections = max(settings.max_connections, self.performance.workers)
        return settings

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "configuration") -> ConnectorConfig:
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise ConfigError(_explain(exc, source)) from None

    @classmethod
    def from_flat(cls, flat: dict[str, Any]) -> ConnectorConfig:
        """The deployment guide's flat keys (pi_web_api_url, pi_auth_type, pi_username, pi_password, catalog,
        schema, tags, af_database_id, include_event_frames); a nested dict passes through unchanged."""
        if "pi_web_api" in flat:
            return cls.from_dict(flat)
        unknown = sorted(set(flat) - set(_FLAT))
        if unknown:
            raise ConfigError(f"unknown key(s) {unknown} — the flat keys are {sorted(_FLAT)}")
        nested: dict[str, Any] = {}
        for key, value in flat.items():
            section, name = _FLAT[key]
            nested.setdefault(section, {})[name] = value
        if "af_database" in nested.get("extraction", {}):
            nested["extraction"].setdefault("include_af", True)
        return cls.from_dict(nested)


_FLAT = {
    "pi_web_api_url": ("pi_web_api", "url"),
    "pi_auth_type": ("pi_web_api", "auth_type"),
    "pi_username": ("pi_web_api", "username"),
    "pi_password": ("pi_web_api", "password"),
    "verify_ssl": ("pi_web_api", "verify_ssl"),
    "secrets_scope": ("pi_web_api", "secrets_scope"),
    "catalog": ("unity_catalog", "catalog"),
    "schema": ("unity_catalog", "schema"),
    "checkpoint_schema": ("unity_catalog", "checkpoint_schema"),
    "tags": ("extraction", "tags"),
    "tag_names": ("extraction", "tag_names"),
    "name_filter": ("extraction", "name_filter"),
    "af_database_id": ("extraction", "af_database"),
    "include_event_frames": ("extraction", "include_event_frames"),
    "include_interpolated": ("extraction", "include_interpolated"),
    "include_summary": ("extraction", "include_summary"),
    "include_current_value": ("extraction", "include_current_value"),
    "include_point_attributes": ("extraction", "include_point_attributes"),
    **{f"include_{d}": ("extraction", f"include_{d}") for d in AF_CATALOG_DATASETS},
    "mode": ("extraction", "mode"),
    "start_date": ("extraction", "start_date"),
    "end_date": ("extraction", "end_date"),
    "lookback": ("extraction", "lookback"),
    "batch_size": ("extraction", "batch_size"),
    "max_count_per_tag": ("extraction", "max_count_per_tag"),
    "workers": ("performance", "workers"),
    "distributed": ("performance", "distributed"),
    "lakehouse_root": ("local", "lakehouse_root"),
}


def _explain(exc: ValidationError, source: str) -> str:
    lines = []
    for error in exc.errors():
        path = ".".join("schema" if part == "schema_" else str(part) for part in error["loc"]) or "(top level)"
        kind = error["type"]
        if kind == "extra_forbidden":
            fix = "unknown key — check the spelling against config/connector_config.yaml"
        elif kind == "missing":
            fix = "required — add it (see config/connector_config.yaml)"
        elif kind == "literal_error":
            fix = f"must be one of {error['ctx']['expected']}"
        else:
            fix = error["msg"].removeprefix("Value error, ").removeprefix(f"{path} ")
            fix = _FIXES.get(kind, lambda e, f: f)(error, fix)
        lines.append(f"{path}: {fix}")
    return f"invalid {source}:\n  " + "\n  ".join(lines)


_FIXES = {
    "greater_than_equal": lambda e, f: f"must be ≥ {e['ctx']['ge']} — set a larger number",
    "less_than_equal": lambda e, f: f"must be ≤ {e['ctx']['le']} — set a smaller number",
    "int_parsing": lambda e, f: "must be a whole number",
    "bool_parsing": lambda e, f: "must be true or false",
}


def _substitute_env(text: str, source: str) -> str:
    """`${VAR}` / `${VAR:-default}` in the YAML (not in comment lines): endpoints differ per environment."""

    def replace(match: re.Match[str]) -> str:
        name, default = match[1], match[2]
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"{source}: environment variable {name} is not set — export it or write ${{{name}:-default}}")

    return "".join(
        line if line.lstrip().startswith("#") else _ENV_REF.sub(replace, line) for line in text.splitlines(True)
    )


def load_config(path: Path | str, overrides: dict[str, Any] | None = None) -> ConnectorConfig:
    """Read a YAML file, apply `overrides` (dotted keys such as `extraction.mode`, or nested dicts) and validate."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror} — check the path") from None
    try:
        data = yaml.safe_load(_substitute_env(text, str(path))) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections (pi_web_api:, extraction:, ...)")
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        target = data
        *parents, last = key.split(".")
        for part in parents:
            if not isinstance(target.get(part), dict):  # a missing section, or one whose keys are all commented out
                target[part] = {}
            target = target[part]
        if isinstance(value, dict) and isinstance(target.get(last), dict):
            target[last].update(value)
        else:
            target[last] = value
    return ConnectorConfig.from_dict(data, source=str(path))
