"""Settings of the PI Web API client: the `pi_web_api`, `retry` and `performance` sections of the YAML.

The config module embeds these models; every check here names the key and the fix, because a user
reads these messages when a YAML file is wrong.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RetrySettings(_Strict):
    max_attempts: int = Field(5, ge=1, description="tries per request, the first included")
    backoff_seconds: float = Field(0.5, ge=0, description="first wait; doubles each retry, with jitter")
    max_backoff_seconds: float = Field(30.0, ge=0)
    retry_statuses: list[int] = Field(default_factory=lambda: [408, 429, 500, 502, 503, 504])
    max_retry_after_seconds: float = Field(
        120.0, ge=0, description="a server's Retry-After is honoured up to this many seconds"
    )

    @field_validator("retry_statuses")
    @classmethod
    def _only_transient(cls, statuses: list[int]) -> list[int]:
        for status in statuses:
            if not 400 <= status <= 599 or status in (400, 401, 403, 404):
                raise ValueError(
                    f"retry.retry_statuses: {status} is not a transient HTTP status; list only statuses worth "
                    "retrying such as 408, 429, 500, 502, 503, 504"
                )
        return statuses


class ClientSettings(_Strict):
    url: str = Field(..., description="base URL ending in /piwebapi")
    auth_type: Literal["anonymous", "basic", "kerberos", "oauth"] = "basic"
    verify_ssl: bool = True
    ca_bundle: str | None = None
    connect_timeout: float = Field(10.0, gt=0)
    read_timeout: float = Field(120.0, gt=0)
    max_connections: int = Field(8, ge=1, description="pooled connections: the number of worker threads")
    kerberos_mutual_authentication: Literal["required", "optional", "disabled"] = "optional"
    kerberos_hostname_override: str | None = None
    oauth_token_url: str | None = None  # default: discovered from {url}/.well-known/openid-configuration
    oauth_scope: str | None = None
    retry: RetrySettings = Field(default_factory=RetrySettings)

    @field_validator("url")
    @classmethod
    def _base_url(cls, url: str) -> str:
        url = url.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"pi_web_api.url must be an http(s) URL such as https://pi.example.com/piwebapi, not {url!r}"
            )
        if parts.username or parts.password:
            raise ValueError("pi_web_api.url must not contain a user name or password; use the credentials keys")
        if parts.query or parts.fragment:
            raise ValueError("pi_web_api.url must not have a query string or fragment")
        return url

    @field_validator("ca_bundle")
    @classmethod
    def _ca_bundle_exists(cls, path: str | None) -> str | None:
        if path is not None and not Path(path).exists():
            raise ValueError(
                f"pi_web_api.ca_bundle {path!r} does not exist; give the PEM file (or folder) of the CA that "
                "signed the PI Web API certificate"
            )
        return path

    @model_validator(mode="after")
    def _ca_bundle_needs_verification(self) -> ClientSettings:
        if self.ca_bundle and not self.verify_ssl:
            raise ValueError("pi_web_api: ca_bundle is set but verify_ssl is false; keep verify_ssl true to use it")
        return self


class Credentials(_Strict):
    """Resolved secrets (from Databricks secrets or environment variables). Never logged."""

    username: str | None = None
    password: SecretStr | None = None
    token: SecretStr | None = None  # static bearer token
    client_id: str | None = None
    client_secret: SecretStr | None = None
