"""What the log redaction catches before a line reaches stderr or the GUI (iot_connector.logs)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from iot_connector.agent import setup_logging
from iot_connector.config import parse_config
from iot_connector.logs import REDACTED, THIRD_PARTY, apply_log_levels, redact, remember_secrets


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("UserNameIdentityToken(UserName='op', Password=b'hunter2\\'x', EncryptionAlgorithm=None)", "hunter2"),
        ('{"client_secret": "dose-abc-123", "client_id": "sp"}', "dose-abc-123"),
        ("connect mqtt://user:pa55word@broker:1883/x", "pa55word"),
        ("https_proxy=http://proxy-user:proxy-pw@10.0.0.1:3128", "proxy-pw"),
        ("headers {'Authorization': 'Bearer eyJhbGciOiJIUzI1NiJ9.payload'}", "eyJhbGciOiJIUzI1NiJ9"),
        ("POST /oidc/v1/token grant_type=client_credentials&access_token=tok-998877&x=1", "tok-998877"),
        ("private_key_password: 'pk-pass-1'", "pk-pass-1"),
        ("api_key=k-123456 rest", "k-123456"),
    ],
)
def test_secret_looking_values_are_redacted(line: str, secret: str):
    cleaned = redact(line)
    assert secret not in cleaned
    assert REDACTED in cleaned


def test_ordinary_lines_are_left_alone():
    for line in (
        "source plant (opcua) started",
        "UserIdentityToken=AnonymousIdentityToken(PolicyId='anonymous')",
        "OAuth: token request failed (URLError); check the workspace URL",
        "agent gui-test started: 1 source(s), sink delta, spool on",
    ):
        assert redact(line) == line


def test_known_secret_values_are_redacted_in_any_wording(tmp_path):
    sink = {
        "type": "zerobus",
        "workspace_url": "https://ws.example.com",
        "zerobus_endpoint": "https://1.zerobus.example.com",
        "client_id": "sp",
        "client_secret": "plain-words-secret",
        "table": "c.s.t",
    }
    remember_secrets(parse_config({"sink": sink}))
    try:
        assert redact("raw frame b'\\x00plain-words-secret\\x01'") == f"raw frame b'\\x00{REDACTED}\\x01'"
    finally:
        remember_secrets(parse_config({}))


def test_stderr_lines_and_tracebacks_are_redacted_and_libraries_stay_quiet(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr("sys.stderr", stream)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    libraries = {name: logging.getLogger(name).level for name in THIRD_PARTY}
    setup_logging("DEBUG")
    try:
        logging.getLogger("asyncua.client").debug("Sending: Password=b'lib-secret'")  # quiet: WARNING
        logging.getLogger("iot_connector.x").info("login with password=%s", "arg-secret-1")
        try:
            raise RuntimeError("failed for mqtt://u:exc-secret-2@host")
        except RuntimeError:
            logging.getLogger("iot_connector.x").exception("boom")
        apply_log_levels("DEBUG", {"asyncua": "DEBUG"})
        logging.getLogger("asyncua.client").debug("Sending: Password=b'lib-secret'")
    finally:
        apply_log_levels(logging.getLevelName(level), {})
        root.handlers[:] = handlers
        for name, was in libraries.items():
            logging.getLogger(name).setLevel(was)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    text = stream.getvalue()
    for secret in ("lib-secret", "arg-secret-1", "exc-secret-2"):
        assert secret not in text
    assert [line["logger"] for line in lines] == ["iot_connector.x", "iot_connector.x", "asyncua.client"]
    assert "RuntimeError" in lines[1]["exc"]
