"""Settings of the PI Web API client: the `pi_web_api`, `retry` and `performance` sections of the YAML.

CONTRACT stub: the client helper completes validation; the config module embeds these models.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetrySettings(_Strict):
    max_attempts: int = Field(5, ge=1, description="tries per request, the first included")
    backoff_seconds: float = Field(0.5, ge=0, description="first wait; doubles each retry, with jitter")
    max_backoff_seconds: float = Field(30.0, ge=0)
    retry_statuses: list[int] = Field(default_factory=lambda: [408, 429, 500, 502, 503, 504])


class ClientSettings(_Strict):
    url: str = Field(..., description="base URL ending in /piwebapi")
    auth_type: Literal["anonymous", "basic", "kerberos", "oauth"] = "basic"
    verify_ssl: bool = True
    ca_bundle: str | None = None
    connect_timeout: float = 10.0
    read_timeout: float = 120.0
    max_connections: int = 8
    kerberos_mutual_authentication: Literal["required", "optional", "disabled"] = "optional"
    kerberos_hostname_override: str | None = None
    oauth_token_url: str | None = None  # default: discovered from {url}/.well-known/openid-configuration
    oauth_scope: str | None = None
    retry: RetrySettings = Field(default_factory=RetrySettings)


class Credentials(_Strict):
    """Resolved secrets (from Databricks secrets or environment variables). Never logged."""

    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None  # static bearer token
    client_id: str | None = None
    client_secret: SecretStr | None = None
