"""Where the PI credentials come from: Databricks secrets on Databricks, environment variables elsewhere.

The config names secret *keys* (`pi_web_api.username_key` ...), never values. On Databricks with
`secrets_scope` set, each key is read from that scope; otherwise from the environment variable named like
the key, upper-cased (`pi_username` -> `PI_USERNAME`). Values are wrapped in `SecretStr` at once, and
error messages name only the scope and key.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable

from pydantic import SecretStr

from osipi_connector.config import ConfigError, ConnectorConfig
from osipi_connector.piwebapi.settings import Credentials

Lookup = Callable[[str], "str | None"]


def on_databricks() -> bool:
    return "DATABRICKS_RUNTIME_VERSION" in os.environ


def env_name(key: str) -> str:
    """`pi_username` -> `PI_USERNAME` (any non-alphanumeric becomes `_`)."""
    return re.sub(r"[^A-Za-z0-9]", "_", key).upper()


def _env_lookup(key: str) -> str | None:
    return os.environ.get(env_name(key)) or None


def _databricks_lookup(scope: str) -> Lookup:
    """dbutils.secrets through databricks-sdk (works in notebooks, jobs and with a local profile)."""
    from databricks.sdk import WorkspaceClient

    secrets = WorkspaceClient().dbutils.secrets

    def lookup(key: str) -> str | None:
        try:
            return secrets.get(scope=scope, key=key) or None
        except Exception as exc:  # the SDK raises several types; the message may not carry the value
            raise ConfigError(
                f"pi_web_api.secrets_scope: cannot read key {key!r} from secret scope {scope!r} "
                f"({type(exc).__name__}) — create it with `databricks secrets put-secret {scope} {key}`"
            ) from None

    return lookup


def resolve_credentials(cfg: ConnectorConfig, lookup: Lookup | None = None) -> Credentials:
    """Credentials for `cfg.pi_web_api.auth_type`; missing ones raise ConfigError naming the key and its source."""
    pi = cfg.pi_web_api
    if lookup is None:
        lookup = _databricks_lookup(pi.secrets_scope) if pi.secrets_scope and on_databricks() else _env_lookup
    where = (
        (lambda key: f"secret {key!r} in scope {pi.secrets_scope!r}")
        if pi.secrets_scope and on_databricks()
        else (lambda key: f"environment variable {env_name(key)}")
    )

    def need(key: str, field: str) -> str:
        value = lookup(key)
        if not value:
            raise ConfigError(f"pi_web_api.{field}: auth_type {pi.auth_type} needs {where(key)} — set it")
        return value

    if pi.auth_type == "basic":
        if pi.username and pi.password:
            return Credentials(username=pi.username, password=pi.password)
        return Credentials(
            username=pi.username or need(pi.username_key, "username_key"),
            password=pi.password or SecretStr(need(pi.password_key, "password_key")),
        )
    if pi.auth_type == "oauth":
        token = lookup(pi.oauth_token_key)
        if token:
            return Credentials(token=SecretStr(token))
        client_id, secret = lookup(pi.oauth_client_id_key), lookup(pi.oauth_client_secret_key)
        if client_id and secret:
            return Credentials(client_id=client_id, client_secret=SecretStr(secret))
        raise ConfigError(
            f"pi_web_api.oauth_token_key: auth_type oauth needs a token ({where(pi.oauth_token_key)}) or "
            f"client credentials ({where(pi.oauth_client_id_key)} and {where(pi.oauth_client_secret_key)}) — set one"
        )
    if pi.auth_type == "kerberos":  # the ticket comes from the Kerberos cache (kinit / keytab), not from here
        return Credentials(username=pi.username)
    return Credentials()
