"""Agent-level security settings (secrets encryption switch) and proxy settings."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from iot_connector.config import ConfigError, apply_agent_proxy, load_config, parse_config, save_state
from iot_connector.config.models import AgentProxySettings

SINK = {
    "type": "zerobus",
    "workspace_url": "https://ws.example.com",
    "zerobus_endpoint": "https://1.zerobus.example.com",
    "client_id": "sp",
    "client_secret": "s3cr3t-value",
    "table": "c.s.t",
}


def test_secrets_are_encrypted_by_default(tmp_path: Path):
    save_state(tmp_path, parse_config({"sink": SINK}))
    text = (tmp_path / "connector_state.json").read_text()
    assert "s3cr3t-value" not in text
    assert json.loads(text)["sink"]["client_secret"].startswith("enc:")
    assert load_config(tmp_path).sink.client_secret.get_secret_value() == "s3cr3t-value"


def test_turning_encryption_off_needs_an_explicit_confirmation():
    with pytest.raises(ConfigError) as err:
        parse_config({"security": {"secrets_encryption": {"enabled": False}}})
    assert "security.secrets_encryption" in str(err.value)
    assert "allow_plaintext: true" in str(err.value)


def test_confirmed_plaintext_is_written_in_clear_with_a_warning(tmp_path: Path, caplog):
    config = parse_config(
        {"sink": SINK, "security": {"secrets_encryption": {"enabled": False, "allow_plaintext": True}}}
    )
    save_state(tmp_path, config)
    assert json.loads((tmp_path / "connector_state.json").read_text())["sink"]["client_secret"] == "s3cr3t-value"
    assert "written in clear" in caplog.text
    assert "s3cr3t-value" not in caplog.text
    assert load_config(tmp_path).sink.client_secret.get_secret_value() == "s3cr3t-value"


def test_rotation_window_must_fit_in_the_validity():
    with pytest.raises(ConfigError, match=r"renew_days_before_expiry .* must be smaller than validity_days"):
        parse_config({"security": {"certificate_auto_rotation": {"renew_days_before_expiry": 30, "validity_days": 20}}})


def test_proxy_urls_are_checked():
    with pytest.raises(ConfigError, match=r"proxy\.https_proxy"):
        parse_config({"proxy": {"https_proxy": "proxy.dmz:3128"}})


def test_agent_proxy_sets_and_clears_only_its_own_variables(monkeypatch):
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "grpc_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("no_grpc_proxy", "from-the-container")
    apply_agent_proxy(AgentProxySettings(http_proxy="http://p:3128", https_proxy="http://p:3129", no_proxy="localhost"))
    assert os.environ["HTTP_PROXY"] == "http://p:3128"
    assert os.environ["https_proxy"] == os.environ["grpc_proxy"]  # noqa: SIM112 == "http://p:3129"
    assert os.environ["no_grpc_proxy"] == "localhost"  # noqa: SIM112
    apply_agent_proxy(AgentProxySettings(http_proxy="http://p:3128"))
    assert os.environ["http_proxy"] == "http://p:3128"
    assert "https_proxy" not in os.environ
    assert "NO_PROXY" not in os.environ
    apply_agent_proxy(AgentProxySettings())
    assert "http_proxy" not in os.environ
    assert os.environ["no_grpc_proxy"] == "from-the-container"  # noqa: SIM112
