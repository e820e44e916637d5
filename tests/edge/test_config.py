"""Configuration: defaults, YAML + JSON state merge, clear errors naming the key, Fernet secrets at rest."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from iot_connector.cli import main as cli_main
from iot_connector.config import STATE_FILE, YAML_FILE, ConfigError, load_config, save_state
from iot_connector.config.models import ZerobusSinkSettings
from iot_connector.config.secrets import KEY_FILE

ZEROBUS = {
    "type": "zerobus",
    "workspace_url": "https://adb-1.cloud.databricks.com",
    "zerobus_endpoint": "https://1.zerobus.eu-west-1.cloud.databricks.com",
    "client_id": "sp-1",
    "client_secret": "very-secret-value",
    "table": "main.edge.iot_records",
}


def _problems(config_dir: Path) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(config_dir)
    return str(info.value)


def test_empty_dir_gives_local_delta_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path)
    assert config.sink.type == "delta"
    assert config.pipeline.spool.enabled
    assert config.metrics.port == 9090
    assert config.sources == []


def test_state_json_overrides_yaml_key_by_key(tmp_path: Path) -> None:
    (tmp_path / YAML_FILE).write_text(
        "agent_id: from-yaml\npipeline:\n  batch_max_records: 10\n  drop_policy: oldest\n"
    )
    (tmp_path / STATE_FILE).write_text(json.dumps({"pipeline": {"batch_max_records": 20}}))
    config = load_config(tmp_path)
    assert (config.agent_id, config.pipeline.batch_max_records, config.pipeline.drop_policy) == (
        "from-yaml",
        20,
        "oldest",
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{not json", "connector_state.json: not valid JSON"),
        ("[1, 2]", "the top level must be a mapping"),
        ('{"pipeline": {"drop_policy": "sometimes"}}', "pipeline.drop_policy"),
        ('{"pipeline": {"batch_max_records": "many"}}', "pipeline.batch_max_records"),
        ('{"pipeline": {"spool": {"max_bytes": 10}}}', "pipeline.spool.max_bytes"),
        ('{"metrics": {"prot": 1}}', "metrics.prot: Extra inputs are not permitted"),
        ('{"sources": [{"name": "x", "type": "profibus"}]}', "sources[0].type: unknown source type 'profibus'"),
        ('{"sources": {"name": "x"}}', "sources: must be a list"),
        ('{"sources": ["plc"]}', "sources[0]: must be a mapping"),
        ('{"plugins": ["no_such_module_xyz"]}', "plugins[0]: cannot import 'no_such_module_xyz'"),
        ('{"sink": {"type": "zerobus", "table": "t"}}', "sink.zerobus.client_id: Field required"),
        ('{"sink": {"type": "s3"}}', "sink"),
    ],
)
def test_bad_config_names_the_key(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / STATE_FILE).write_text(text)
    assert expected in _problems(tmp_path)


def test_source_errors_point_at_the_source(tmp_path: Path) -> None:
    state = {
        "plugins": ["tests.edge.counter_source"],
        "sources": [{"name": "ok", "type": "counter"}, {"name": "bad name!", "type": "counter", "batch": "x"}],
    }
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    text = _problems(tmp_path)
    assert "sources[1].name" in text
    assert "sources[1].batch" in text
    assert "sources[0]" not in text
    state["sources"] = [{"name": "a", "type": "counter"}, {"name": "a", "type": "counter"}]
    (tmp_path / STATE_FILE).write_text(json.dumps(state))
    assert "used twice" in _problems(tmp_path)


def test_bad_yaml_is_reported(tmp_path: Path) -> None:
    (tmp_path / YAML_FILE).write_text("pipeline: [unclosed\n")
    assert "connector.yaml: not valid YAML" in _problems(tmp_path)


def test_secrets_encrypted_at_rest_with_0600_key(tmp_path: Path) -> None:
    config = load_config(tmp_path).model_copy(update={"sink": ZerobusSinkSettings.model_validate(ZEROBUS)})
    path = save_state(tmp_path, config)
    text = path.read_text()
    assert "very-secret-value" not in text
    assert json.loads(text)["sink"]["client_secret"].startswith("enc:")
    key = tmp_path / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    loaded = load_config(tmp_path)
    assert loaded.sink.client_secret.get_secret_value() == "very-secret-value"
    assert "very-secret-value" not in repr(loaded)
    assert "very-secret-value" not in str(loaded.model_dump())


def test_a_key_file_we_cannot_chmod_still_loads_with_a_warning(tmp_path: Path, monkeypatch, caplog) -> None:
    """A read-only Kubernetes Secret mount: group-readable and owned by root, so chmod is refused."""
    config = load_config(tmp_path).model_copy(update={"sink": ZerobusSinkSettings.model_validate(ZEROBUS)})
    save_state(tmp_path, config)
    (tmp_path / KEY_FILE).chmod(0o644)

    def refused(*_args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr("iot_connector.config.secrets.os.chmod", refused)
    loaded = load_config(tmp_path)
    assert loaded.sink.client_secret.get_secret_value() == "very-secret-value"
    assert any("not ours to change" in r.getMessage() for r in caplog.records)


def test_rotate_key_reencrypts_and_still_loads(tmp_path: Path, capsys) -> None:
    config = load_config(tmp_path).model_copy(update={"sink": ZerobusSinkSettings.model_validate(ZEROBUS)})
    save_state(tmp_path, config)
    before_key = (tmp_path / KEY_FILE).read_bytes()
    before_token = json.loads((tmp_path / STATE_FILE).read_text())["sink"]["client_secret"]
    assert cli_main(["secrets", "rotate-key", "--config-dir", str(tmp_path)]) == 0
    assert "1 value re-encrypted" in capsys.readouterr().out
    assert (tmp_path / KEY_FILE).read_bytes() != before_key
    assert json.loads((tmp_path / STATE_FILE).read_text())["sink"]["client_secret"] != before_token
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert load_config(tmp_path).sink.client_secret.get_secret_value() == "very-secret-value"


def test_wrong_key_gives_clear_error_without_the_value(tmp_path: Path) -> None:
    config = load_config(tmp_path).model_copy(update={"sink": ZerobusSinkSettings.model_validate(ZEROBUS)})
    save_state(tmp_path, config)
    (tmp_path / KEY_FILE).unlink()
    assert "secret key file" in _problems(tmp_path)
    from cryptography.fernet import Fernet

    (tmp_path / KEY_FILE).write_bytes(Fernet.generate_key())
    text = _problems(tmp_path)
    assert "sink.client_secret: cannot decrypt" in text
    assert "very-secret-value" not in text


def test_secrets_encrypt_command_encrypts_plaintext(tmp_path: Path) -> None:
    (tmp_path / STATE_FILE).write_text(json.dumps({"sink": ZEROBUS}))
    assert cli_main(["secrets", "encrypt", "--config-dir", str(tmp_path)]) == 0
    assert "very-secret-value" not in (tmp_path / STATE_FILE).read_text()
    assert load_config(tmp_path).sink.client_secret.get_secret_value() == "very-secret-value"


def test_check_command_reports_problems(tmp_path: Path, capsys) -> None:
    (tmp_path / STATE_FILE).write_text('{"pipeline": {"drop_policy": "x"}}')
    assert cli_main(["check", "--config-dir", str(tmp_path)]) == 1
    assert "pipeline.drop_policy" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["--help"], ["run", "--help"], ["check", "--help"], ["secrets", "rotate-key", "--help"]]
)
def test_help_everywhere(argv: list[str], capsys) -> None:
    with pytest.raises(SystemExit) as info:
        cli_main(argv)
    assert info.value.code == 0
    assert "usage: iot-connector" in capsys.readouterr().out


def test_json_schemas_cover_agent_and_registered_sources() -> None:
    import tests.edge.counter_source  # noqa: F401 - registers "counter"
    from iot_connector.config import json_schemas

    schemas = json_schemas()
    assert "pipeline" in schemas["agent"]["properties"]
    assert schemas["sources"]["counter"]["properties"]["type"]["const"] == "counter"
