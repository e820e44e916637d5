"""Configuration: both samples load, every documented key is real, bad input names the key and the fix."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import pytest

from osipi_connector.config import ConfigError, ConnectorConfig, load_config
from osipi_connector.secrets import env_name, resolve_credentials

ROOT = Path(__file__).resolve().parents[2]
FULL = ROOT / "config" / "connector_config.yaml"
LOCAL = ROOT / "config" / "local.yaml"


def test_samples_load(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PI_WEB_API_URL", raising=False)
    full = load_config(FULL)
    assert full.pi_web_api.url == "https://pi.example.com/piwebapi"
    assert full.extraction.batch_size == 100
    assert full.extraction.max_count_per_tag == 10_000
    local = load_config(LOCAL)
    assert local.pi_web_api.auth_type == "anonymous"
    assert local.extraction.mode == "full"
    assert local.extraction.af_database == r"\\PISIM-AF\Plant"
    monkeypatch.setenv("PI_WEB_API_URL", "http://127.0.0.1:9999/piwebapi")
    assert load_config(LOCAL).pi_web_api.url == "http://127.0.0.1:9999/piwebapi"


def test_every_commented_key_in_the_full_sample_is_valid(tmp_path: Path) -> None:
    """Uncommenting the `# key: value` lines must give a valid file: the sample documents real keys only."""
    text = FULL.read_text()
    uncommented = re.sub(r"(?m)^(\s*)# ([a-z_]+:(?: .*)?)$", r"\1\2", text)
    assert uncommented.count("\n") == text.count("\n")
    assert uncommented != text
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    path = tmp_path / "all.yaml"
    path.write_text(uncommented.replace("/dbfs/FileStore/certs/corp-ca.pem", str(ca)))
    config = load_config(path)
    assert config.pi_web_api.secrets_scope == "pi-connector"
    assert config.extraction.name_filter == "*"
    assert config.extraction.af_database == r"\\PIAF01\Plant"
    assert config.extraction.clock == "server"
    assert config.performance.max_window == timedelta(days=1)


@pytest.mark.parametrize(
    ("section", "patch", "expected"),
    [
        ("extraction", {"batch_size": 0}, "extraction.batch_size: must be ≥ 1"),
        ("extraction", {"max_count_per_tag": 200_000}, "extraction.max_count_per_tag: must be ≤ 150000"),
        ("extraction", {"mode": "delta"}, "extraction.mode: must be one of 'incremental', 'full' or 'backfill'"),
        ("extraction", {"lookback": "2 hours"}, "extraction.lookback: '2 hours' is not a duration"),
        ("extraction", {"start_date": "yesterday-ish"}, "extraction.start_date: 'yesterday-ish' is not a time"),
        ("extraction", {"tags": [], "name_filter": None}, "no tags selected — set extraction.tags"),
        ("extraction", {"bach_size": 10}, "extraction.bach_size: unknown key"),
        ("pi_web_api", {"url": "pi.example.com"}, "pi_web_api.url: must be an http(s) URL"),
        ("pi_web_api", {"auth_type": "ntlm"}, "pi_web_api.auth_type: must be one of"),
        ("pi_web_api", {"retry": {"max_attempts": 2}}, "move it to the top-level `retry` section"),
        ("performance", {"workers": 0}, "performance.workers: must be ≥ 1"),
        ("unity_catalog", {"schema": "bronze-1"}, "unity_catalog.schema: 'bronze-1' is not a plain identifier"),
    ],
)
def test_bad_values_name_the_key_and_the_fix(section: str, patch: dict, expected: str) -> None:
    data = {"pi_web_api": {"url": "https://pi/piwebapi"}, "extraction": {"name_filter": "*"}}
    data.setdefault(section, {}).update(patch)
    with pytest.raises(ConfigError) as info:
        ConnectorConfig.from_dict(data)
    assert expected in str(info.value)


def test_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read config file .*missing\.yaml"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("pi_web_api: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)
    env = tmp_path / "env.yaml"
    env.write_text("pi_web_api:\n  url: ${H4A_UNSET_VARIABLE}\nextraction:\n  name_filter: '*'\n")
    with pytest.raises(ConfigError, match="environment variable H4A_UNSET_VARIABLE is not set"):
        load_config(env)


def test_overrides_apply_dotted_keys() -> None:
    config = load_config(LOCAL, {"extraction.mode": "backfill", "unity_catalog.catalog": "dev", "local": None})
    assert config.extraction.mode == "backfill"
    assert config.unity_catalog.catalog == "dev"


def test_flat_keys_of_the_guide() -> None:
    config = ConnectorConfig.from_flat(
        {
            "pi_web_api_url": "https://pi.example.com/piwebapi",
            "pi_auth_type": "basic",
            "pi_username": "svc",
            "pi_password": "s3cret-value",
            "catalog": "main",
            "schema": "bronze",
            "tags": ["F1DPabc"],
            "af_database_id": "F1RDxyz",
            "include_event_frames": True,
        }
    )
    assert config.unity_catalog.schema_ == "bronze"
    assert config.extraction.af_database == "F1RDxyz"
    assert "s3cret-value" not in repr(config)
    assert "s3cret-value" not in str(config.model_dump())
    creds = resolve_credentials(config)
    assert creds.username == "svc"
    assert creds.password.get_secret_value() == "s3cret-value"
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['pi_url'\]"):
        ConnectorConfig.from_flat({"pi_url": "x"})


def test_credentials_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    base = {"pi_web_api": {"url": "https://pi/piwebapi", "auth_type": "basic"}, "extraction": {"tags": ["a"]}}
    config = ConnectorConfig.from_dict(base)
    monkeypatch.delenv("PI_USERNAME", raising=False)
    monkeypatch.setenv("PI_PASSWORD", "top-secret-pw")
    with pytest.raises(ConfigError) as info:
        resolve_credentials(config)
    assert "environment variable PI_USERNAME" in str(info.value)
    assert "top-secret-pw" not in str(info.value)
    monkeypatch.setenv("PI_USERNAME", "svc")
    creds = resolve_credentials(config)
    assert (creds.username, creds.password.get_secret_value()) == ("svc", "top-secret-pw")

    base["pi_web_api"] |= {"auth_type": "oauth", "oauth_client_id_key": "my-client"}
    oauth = ConnectorConfig.from_dict(base)
    assert env_name("my-client") == "MY_CLIENT"
    monkeypatch.delenv("PI_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="auth_type oauth needs a token"):
        resolve_credentials(oauth)
    monkeypatch.setenv("MY_CLIENT", "connector")
    monkeypatch.setenv("PI_CLIENT_SECRET", "cs-value")
    creds = resolve_credentials(oauth)
    assert creds.client_id == "connector"
    assert creds.client_secret.get_secret_value() == "cs-value"
    monkeypatch.setenv("PI_TOKEN", "bearer-value")
    assert resolve_credentials(oauth).token.get_secret_value() == "bearer-value"
