"""Typed settings of the edge agent: the one place for every default.

The state file (`connector_state.json`) and the optional `connector.yaml` both validate into `AgentConfig`.
Source configs are not listed here: each protocol registers its own model (`sources.base.register`) and
`config.loader` picks it by the `type` key, so adding a protocol never touches this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, SerializeAsAny, field_validator, model_validator

from iot_connector.sources.base import SourceConfig

DropPolicy = Literal["oldest", "newest", "block"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SpoolSettings(_Strict):
    """The durable write-ahead spool. `durability="fsync"` acknowledges a source only after an fsync (group
    commit: writers arriving during one fsync share the next); `"write"` after the OS write (survives kill -9, not power loss)."""

    enabled: bool = True
    directory: Path | None = Field(None, description="default: <config-dir>/spool; relative to the config dir")
    max_bytes: int = Field(1 << 30, ge=1 << 16, description="size cap of all segment files")
    segment_bytes: int = Field(64 << 20, ge=1 << 12)
    durability: Literal["fsync", "write"] = "fsync"
    fsync_interval_ms: float = Field(
        0.0,
        ge=0,
        description="extra wait before each fsync to group more writers (0: the fsync in progress groups them)",
    )
    memory_records: int = Field(100_000, ge=0, description="recent records also kept in memory to skip disk reads")


class BreakerSettings(_Strict):
    failure_threshold: int = Field(5, ge=1, description="consecutive sink failures that open the circuit")
    reset_timeout_s: float = Field(
        2.0,
        gt=0,
        description="open time before one trial batch is let through (data resumes this soon after an outage)",
    )


class RetrySettings(_Strict):
    initial_backoff_s: float = Field(0.5, gt=0)
    max_backoff_s: float = Field(2.0, gt=0, description="cap of the doubling wait between retries of one batch")
    multiplier: float = Field(2.0, ge=1)
    jitter: float = Field(0.2, ge=0, le=1)


class PipelineSettings(_Strict):
    memory_queue_records: int = Field(100_000, ge=1, description="bound of the memory queue when the spool is off")
    drop_policy: DropPolicy = Field("block", description="when full: drop oldest | drop newest | block sources")
    batch_max_records: int = Field(5_000, ge=1)
    batch_max_wait_ms: float = Field(200.0, ge=0)
    max_inflight_batches: int = Field(4, ge=1, description="batches sent before the oldest is acknowledged")
    drain_timeout_s: float = Field(10.0, ge=0, description="on stop: time left to send what is queued")
    sink_ack_timeout_s: float = Field(
        30.0, gt=0, description="a batch unacknowledged this long marks the sink down (iot_sink_up 0): a hung sink"
    )
    dead_letters_max_bytes: int = Field(
        10 << 20, ge=0, description="cap of the rejected-message file in the spool folder (0: no file, count only)"
    )
    spool: SpoolSettings = SpoolSettings()
    breaker: BreakerSettings = BreakerSettings()
    retry: RetrySettings = RetrySettings()


class DeltaSinkSettings(_Strict):
    """Local Delta table (delta-rs keeps it; the agent commits its appends itself): the embedded default, needs no
    Databricks."""

    type: Literal["delta"] = "delta"
    path: Path | None = Field(None, description="default: <config-dir>/data/iot_records; relative to the config dir")
    compact_every_commits: int = Field(
        100, ge=0, description="compact the table's small files after this many commits (0: never; see docs)"
    )
    log_retention_minutes: int = Field(
        10,
        ge=1,
        description="Delta log entries kept (time travel, stream readers' lag); each one costs every commit a little",
    )
    deleted_file_retention_hours: int = Field(
        1, ge=1, description="files compacted away are vacuumed this long after (a reader may still be using them)"
    )


class ProxySettings(_Strict):
    """Outbound proxy for ZeroBus; the SDK reads the standard variables, the agent sets them from here."""

    url: str | None = Field(None, pattern=r"^https?://", description="http://proxy:3128")
    no_proxy: str | None = Field(None, description="comma-separated hosts that bypass the proxy")


class ZerobusSinkSettings(_Strict):
    type: Literal["zerobus"] = "zerobus"
    workspace_url: str = Field(..., pattern=r"^https?://", description="https://<workspace>.cloud.databricks.com")
    zerobus_endpoint: str = Field(
        ..., pattern=r"^https?://", description="https://<workspace_id>.zerobus.<region>.cloud.databricks.com"
    )
    client_id: str = Field(..., min_length=1, description="service principal application id")
    client_secret: SecretStr
    table: str = Field(..., description="catalog.schema.table")
    proxy: ProxySettings = ProxySettings()
    max_batch_bytes: int = Field(8 << 20, ge=1024, le=10_420_224, description="split batches above this size")
    recovery_retries: int = Field(4, ge=0)
    recovery_backoff_ms: int = Field(2000, ge=0)
    recovery_timeout_ms: int = Field(15000, ge=0)
    server_lack_of_ack_timeout_ms: int = Field(60000, ge=0)

    @field_validator("table")
    @classmethod
    def _three_parts(cls, value: str) -> str:
        parts = value.split(".")
        if len(parts) != 3 or not all(parts):
            raise ValueError(f"must be catalog.schema.table (3 non-empty parts), got {value!r}")
        return value


SinkSettings = Annotated[DeltaSinkSettings | ZerobusSinkSettings, Field(discriminator="type")]


class MetricsBasicAuth(_Strict):
    """HTTP basic auth on /metrics, as Prometheus exporters offer it (scrape with `basic_auth:` in
    prometheus.yml). The password is stored encrypted like every other secret."""

    username: str = Field(..., min_length=1)
    password: SecretStr = Field(..., description="at least 12 characters")

    @field_validator("password")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 12:
            raise ValueError("needs at least 12 characters")
        return value


class MetricsSettings(_Strict):
    enabled: bool = True
    host: str = Field("0.0.0.0", description="127.0.0.1: only this machine can scrape; 0.0.0.0: every interface")
    port: int = Field(9090, ge=0, le=65535)
    basic_auth: MetricsBasicAuth | None = Field(None, description="require a user name and password to scrape")


class TracingSettings(_Strict):
    """Optional OpenTelemetry spans (needs opentelemetry-sdk, plus opentelemetry-exporter-otlp for OTLP)."""

    enabled: bool = False
    exporter: Literal["otlp", "console"] = Field("otlp", description="otlp (gRPC, port 4317) or console (stdout)")
    endpoint: str | None = Field(None, description="OTLP endpoint, default http://localhost:4317 (or OTEL_* env)")
    service_name: str = Field("iot-connector", min_length=1)


class CertificateRotationSettings(_Strict):
    """Renewal of the OPC-UA client certificates the agent generated itself (never user-supplied ones):
    checked at start and daily; one expiring within the window is re-issued (same key, application URI and
    key usage; the old one kept as `.bak`) and its source restarted. The server must trust the new one."""

    enabled: bool = True
    renew_days_before_expiry: int = Field(30, ge=1, le=3650, description="renew when it expires within this")
    validity_days: int = Field(365, ge=2, le=3650, description="lifetime of a renewed certificate")

    @model_validator(mode="after")
    def _window_inside_validity(self) -> CertificateRotationSettings:
        if self.renew_days_before_expiry >= self.validity_days:
            raise ValueError(
                f"renew_days_before_expiry ({self.renew_days_before_expiry}) must be smaller than validity_days "
                f"({self.validity_days}), or every renewed certificate would be renewed again at once"
            )
        return self


class SecretsEncryptionSettings(_Strict):
    """Secrets (passwords, client secrets) Fernet-encrypted in connector_state.json. Turning this off writes
    them in clear: anyone who reads the file or a backup of it gets them; hence the explicit confirmation."""

    enabled: bool = True
    allow_plaintext: bool = Field(False, description="confirm that secrets may be stored in clear (not recommended)")

    @model_validator(mode="after")
    def _plaintext_confirmed(self) -> SecretsEncryptionSettings:
        if not self.enabled and not self.allow_plaintext:
            raise ValueError(
                "enabled: false would store passwords and client secrets in clear in connector_state.json; "
                "keep it on, or also set allow_plaintext: true to confirm (not recommended)"
            )
        return self


class SecuritySettings(_Strict):
    certificate_auto_rotation: CertificateRotationSettings = CertificateRotationSettings()
    secrets_encryption: SecretsEncryptionSettings = SecretsEncryptionSettings()


class AgentProxySettings(_Strict):
    """Outbound proxy for everything the agent sends over HTTP(S)/gRPC (ZeroBus, OAuth, connection tests),
    exported as the standard variables; the ZeroBus sink's own `sink.proxy` wins where it is set."""

    http_proxy: str | None = Field(None, pattern=r"^https?://", description="for http:// URLs: http://proxy:3128")
    https_proxy: str | None = Field(None, pattern=r"^https?://", description="for https:// and gRPC: http://proxy:3128")
    no_proxy: str | None = Field(None, description="comma-separated hosts that bypass the proxy")


class AgentConfig(_Strict):
    agent_id: str = Field("edge-agent", min_length=1)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_levels: dict[str, Literal["DEBUG", "INFO", "WARNING", "ERROR"]] = Field(
        default_factory=dict,
        description="per-logger levels, e.g. {asyncua: DEBUG}; libraries log at WARNING unless named here",
    )
    plugins: list[str] = Field(default_factory=list, description="extra modules that register source types")
    sink: SinkSettings = DeltaSinkSettings()
    pipeline: PipelineSettings = PipelineSettings()
    metrics: MetricsSettings = MetricsSettings()
    tracing: TracingSettings = TracingSettings()
    security: SecuritySettings = SecuritySettings()
    proxy: AgentProxySettings = AgentProxySettings()
    sources: list[SerializeAsAny[SourceConfig]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_source_names(self) -> AgentConfig:
        seen: set[str] = set()
        for source in self.sources:
            if source.name in seen:
                raise ValueError(f"sources: the name {source.name!r} is used twice; names must be unique")
            seen.add(source.name)
        return self
