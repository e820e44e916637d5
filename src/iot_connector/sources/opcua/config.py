"""OPC UA source configuration: endpoint, security, identity, nodes / browse discovery, subscription."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from iot_connector.sources.base import SourceConfig

SecurityPolicy = Literal["None", "Basic256Sha256", "Aes256Sha256RsaPss"]
SecurityMode = Literal["None", "Sign", "SignAndEncrypt"]
DeadbandType = Literal["none", "absolute", "percent"]

# nsu=<namespace uri>;s=Name | ns=<index>;i=42 | i=2258 (namespace 0). The URI form survives server restarts.
NODE_ID = re.compile(r"^(?:(?:nsu=(?P<uri>[^;]+)|ns=(?P<ns>\d+));)?(?P<kind>[isgb])=(?P<ident>.+)$", re.S)


def check_node_id(node_id: str) -> str:
    if not NODE_ID.match(node_id):
        raise ValueError(f"node id {node_id!r} is not nsu=<namespace uri>;s=<name>, ns=<index>;s=<name> or i=<number>")
    return node_id


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MonitoringConfig(_Model):
    """Monitored-item parameters; set on the source as defaults, overridable per node."""

    sampling_interval_ms: float | None = Field(None, ge=0, description="server sampling; 0 = fastest, None = default")
    queue_size: int | None = Field(None, ge=0, le=100000)
    discard_oldest: bool | None = None
    deadband_type: DeadbandType | None = None
    deadband_value: float | None = Field(None, ge=0)


DEFAULT_MONITORING = MonitoringConfig(
    sampling_interval_ms=100, queue_size=10, discard_oldest=True, deadband_type="none", deadband_value=0
)


class NodeConfig(MonitoringConfig):
    """One node to read, with an optional display name and monitoring overrides."""

    id: str = Field(..., description="nsu=<uri>;s=Name (recommended), ns=2;s=Name or i=2258")
    name: str | None = Field(None, description="tag_path of its records; defaults to the browse name")

    _check_id = field_validator("id")(check_node_id)


class BrowseConfig(_Model):
    """Discover variables under a root instead of (or besides) listing them."""

    root: str = Field("i=85", description="node id to start from (i=85 is the Objects folder)")
    depth: int = Field(3, ge=1, le=20)
    filter: str = Field("*", description="glob on the browse path from the root, e.g. Line1/*/Temp*")
    max_nodes: int = Field(10000, ge=1)

    _check_root = field_validator("root")(check_node_id)


class OpcuaConfig(SourceConfig):
    """A session to one OPC UA server."""

    type: Literal["opcua"] = "opcua"
    endpoint: str = Field(..., description="opc.tcp://host:4840/path")
    security_policy: SecurityPolicy = "None"
    security_mode: SecurityMode = "None"
    application_uri: str = Field("urn:iot-connector:client", description="must match the client certificate's URI SAN")
    cert_file: str | None = Field(None, description="client certificate (DER); generated here if absent")
    key_file: str | None = Field(None, description="client private key (PEM); generated here if absent")
    trusted_server_certs: list[str] = Field(
        default_factory=list, description="server certificates or CA certificates (files or folders) to trust"
    )
    trust_any_server: bool = Field(False, description="accept any server certificate (testing only)")
    username: str | None = None
    password: SecretStr | None = None
    mode: Literal["subscribe", "poll"] = "subscribe"
    publishing_interval_ms: float = Field(500, gt=0)
    poll_interval_s: float = Field(1.0, gt=0)
    monitoring: MonitoringConfig = DEFAULT_MONITORING
    monitored_items_batch_size: int = Field(1000, ge=1, description="items per CreateMonitoredItems request")
    nodes: list[NodeConfig] = Field(default_factory=list)
    browse: BrowseConfig | None = None
    timeout_s: float = Field(4.0, gt=0)
    max_pending: int = Field(50000, ge=100, description="values received but not yet emitted before reading pauses")

    @field_validator("nodes", mode="before")
    @classmethod
    def _plain_ids(cls, nodes: object) -> object:
        """Allow `nodes: ["nsu=...;s=A", ...]` as a shorthand for `[{id: ...}]`."""
        if isinstance(nodes, list):
            return [{"id": n} if isinstance(n, str) else n for n in nodes]
        return nodes

    @field_validator("monitoring")
    @classmethod
    def _fill_defaults(cls, monitoring: MonitoringConfig) -> MonitoringConfig:
        """A partial `monitoring:` section keeps the defaults of the keys it leaves out."""
        return DEFAULT_MONITORING.model_copy(update=monitoring.model_dump(exclude_none=True))

    @field_validator("endpoint")
    @classmethod
    def _endpoint(cls, endpoint: str) -> str:
        if not re.match(r"^opc\.tcp://[^/:]+(:\d+)?(/.*)?$", endpoint):
            raise ValueError(f"endpoint {endpoint!r} must look like opc.tcp://host:4840/path")
        return endpoint

    @model_validator(mode="after")
    def _consistent(self) -> OpcuaConfig:
        if not self.nodes and self.browse is None:
            raise ValueError("give nodes to monitor, a browse section, or both")
        if (self.security_policy == "None") != (self.security_mode == "None"):
            raise ValueError(
                f"security_policy {self.security_policy} with security_mode {self.security_mode}: "
                "use None/None, or a policy with Sign or SignAndEncrypt"
            )
        if self.security_policy != "None":
            if not (self.cert_file and self.key_file):
                raise ValueError("a security policy needs cert_file and key_file (they are generated if missing)")
            if not self.trusted_server_certs and not self.trust_any_server:
                raise ValueError("a security policy needs trusted_server_certs (or trust_any_server: true, for tests)")
        if self.password is not None and self.username is None:
            raise ValueError("password without username")
        ids = [n.id for n in self.nodes]
        dupes = {i for i in ids if ids.count(i) > 1}
        if dupes:
            raise ValueError(f"nodes: {sorted(dupes)} listed more than once")
        return self
