"""Renewal of the OPC-UA client certificates the agent generated: real certificates with short validities."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from iot_connector.config import parse_config
from iot_connector.sources.opcua import OpcuaSource
from iot_connector.sources.opcua.certificates import (
    generate_certificate,
    is_agent_generated,
    renew_if_due,
    renew_sources,
)
from iot_connector.web.runtime import AUDIT_FILE, Runtime
from tests.edge.sources.helpers import Collector, free_port
from tests.edge.sources.opcua_server import PlantServer
from tests.edge.sources.opcua_server import source_config as config

URI = "urn:test:agent"


def load(path: Path) -> x509.Certificate:
    return x509.load_der_x509_certificate(path.read_bytes())


def days_left(cert: x509.Certificate) -> float:
    return (cert.not_valid_after_utc - dt.datetime.now(dt.timezone.utc)).total_seconds() / 86400


def test_a_generated_certificate_expiring_in_2_days_is_renewed_with_the_same_identity(tmp_path: Path):
    cert_file, key_file = tmp_path / "cert.der", tmp_path / "key.pem"
    generate_certificate(cert_file, key_file, URI, days=2)
    old_bytes, old = cert_file.read_bytes(), load(cert_file)
    renewal = renew_if_due(cert_file, key_file, renew_days=30, validity_days=365)
    assert renewal is not None
    new = load(cert_file)
    assert 364 < days_left(new) <= 365
    assert renewal.new_not_after == new.not_valid_after_utc
    assert renewal.old_not_after == old.not_valid_after_utc
    assert (tmp_path / "cert.der.bak").read_bytes() == old_bytes
    san = new.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [URI]
    assert list(new.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.CLIENT_AUTH
    ]
    assert new.extensions.get_extension_for_class(x509.KeyUsage).value == (
        old.extensions.get_extension_for_class(x509.KeyUsage).value
    )
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert new.public_key().public_bytes(serialization.Encoding.DER, spki) == old.public_key().public_bytes(
        serialization.Encoding.DER, spki
    )
    assert new.subject == old.subject
    assert is_agent_generated(cert_file)  # still ours: renewed again next year
    assert renew_if_due(cert_file, key_file, renew_days=30, validity_days=365) is None


def test_a_certificate_valid_for_300_days_is_untouched(tmp_path: Path):
    cert_file, key_file = tmp_path / "cert.der", tmp_path / "key.pem"
    generate_certificate(cert_file, key_file, URI, days=300)
    before = cert_file.read_bytes()
    assert renew_if_due(cert_file, key_file, renew_days=30, validity_days=365) is None
    assert cert_file.read_bytes() == before
    assert not (tmp_path / "cert.der.bak").exists()


def test_user_supplied_certificates_are_never_renewed(tmp_path: Path):
    cert_file, key_file = tmp_path / "cert.der", tmp_path / "key.pem"
    generate_certificate(cert_file, key_file, URI, days=2)
    (tmp_path / "cert.der.generated.json").unlink()  # no marker: a certificate the user brought
    before = cert_file.read_bytes()
    assert renew_if_due(cert_file, key_file, 30, 365) is None
    assert cert_file.read_bytes() == before

    # the agent generated one, then the user put their own (also expiring soon) in its place
    ours, theirs = tmp_path / "ours.der", tmp_path / "theirs.der"
    generate_certificate(ours, key_file, URI, days=2)
    generate_certificate(theirs, key_file, "urn:user:own", days=2)
    ours.write_bytes(theirs.read_bytes())
    assert not is_agent_generated(ours)
    assert renew_if_due(ours, key_file, 30, 365) is None
    assert ours.read_bytes() == theirs.read_bytes()
    assert not list(tmp_path.glob("*.bak"))


def opcua_source(tmp_path: Path, name: str) -> dict:
    return {
        "name": name,
        "type": "opcua",
        "endpoint": "opc.tcp://127.0.0.1:9/unused",
        "security_policy": "Basic256Sha256",
        "security_mode": "SignAndEncrypt",
        "application_uri": URI,
        "cert_file": str(tmp_path / f"{name}.der"),
        "key_file": str(tmp_path / f"{name}.pem"),
        "trust_any_server": True,
        "nodes": ["ns=2;s=X"],
    }


def test_renew_sources_reports_what_happened_per_source(tmp_path: Path):
    config = parse_config({"sources": [opcua_source(tmp_path, "due"), opcua_source(tmp_path, "fresh")]})
    generate_certificate(tmp_path / "due.der", tmp_path / "due.pem", URI, days=2)
    generate_certificate(tmp_path / "fresh.der", tmp_path / "fresh.pem", URI, days=300)
    done = renew_sources(config.sources, 30, 365)
    assert list(done) == ["due"]
    assert "renewed until" in done["due"]
    assert "due.der.bak" in done["due"]
    assert "trusted" in done["due"]


async def test_the_gui_runtime_renews_audits_and_restarts_the_source(tmp_path: Path):
    state = {
        "metrics": {"enabled": False},
        "pipeline": {"spool": {"enabled": False}},
        "security": {"certificate_auto_rotation": {"renew_days_before_expiry": 10, "validity_days": 40}},
        "sources": [opcua_source(tmp_path, "plc")],
    }
    (tmp_path / "connector_state.json").write_text(json.dumps(state))
    cert_file = tmp_path / "plc.der"
    generate_certificate(cert_file, tmp_path / "plc.pem", URI, days=2)
    runtime = Runtime(tmp_path)
    await runtime.start()
    try:
        assert 39 < days_left(load(cert_file)) <= 40  # renewed at start, before the source connected
        assert runtime.agent is not None
        first = next(s for s in runtime.agent.sources if s.config.name == "plc")
        generate_certificate(cert_file, tmp_path / "plc.pem", URI, days=3)  # as if a month had passed
        assert list(await runtime.renew_certificates()) == ["plc"]
        again = next(s for s in runtime.agent.sources if s.config.name == "plc")
        assert again is not first  # restarted with the new certificate
    finally:
        await runtime.stop()
    entries = [json.loads(line) for line in (tmp_path / AUDIT_FILE).read_text().splitlines()]
    assert [e["action"] for e in entries] == ["cert.renew plc", "cert.renew plc"]
    assert entries[0]["user"] == "agent"
    assert "renewed until" in entries[0]["what"]["message"]


async def test_auto_rotation_off_leaves_certificates_alone(tmp_path: Path):
    state = {
        "metrics": {"enabled": False},
        "security": {"certificate_auto_rotation": {"enabled": False}},
        "sources": [opcua_source(tmp_path, "plc")],
    }
    (tmp_path / "connector_state.json").write_text(json.dumps(state))
    generate_certificate(tmp_path / "plc.der", tmp_path / "plc.pem", URI, days=2)
    before = (tmp_path / "plc.der").read_bytes()
    runtime = Runtime(tmp_path)
    await runtime.start()
    try:
        assert await runtime.renew_certificates() == {}
    finally:
        await runtime.stop()
    assert (tmp_path / "plc.der").read_bytes() == before


@pytest.mark.integration
async def test_a_renewed_certificate_is_accepted_by_a_real_secured_server(tmp_path: Path):
    trusted = tmp_path / "server-trusts"
    trusted.mkdir()
    (tmp_path / "server").mkdir()
    server = PlantServer(free_port(), pki=tmp_path / "server", trusted_clients=trusted)
    await server.make_certificate()
    cert_file, key_file = tmp_path / "agent" / "cert.der", tmp_path / "agent" / "key.pem"
    cfg = config(
        server.endpoint,
        security_policy="Basic256Sha256",
        security_mode="SignAndEncrypt",
        application_uri=URI,
        cert_file=str(cert_file),
        key_file=str(key_file),
        trusted_server_certs=[str(server.cert)],
    )
    generate_certificate(cert_file, key_file, URI, days=2)
    assert renew_if_due(cert_file, key_file, 30, 365) is not None
    shutil.copy(cert_file, trusted / "agent.der")  # what the renewal message asks the operator to do
    await server.start()
    try:
        text = await OpcuaSource(cfg, Collector()).test_connection()
    finally:
        await server.stop()
    assert "(Basic256Sha256/SignAndEncrypt)" in text
