"""OPC-UA client certificates the agent generates, and their renewal before they expire.

Why a marker: only certificates the agent made itself may be replaced by it. Generation writes
`<cert_file>.generated.json` with the certificate's SHA-256; a certificate without that marker, or one whose
content no longer matches it (the user put their own in place), is user-supplied and never touched.
Renewal keeps the private key, the subject, the subject alternative names (application URI, host) and the
key usages, so only the validity changes; the old certificate stays beside it as `<cert_file>.bak`.
A server that trusted the old self-signed certificate must be given the new one: the message says so.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import shutil
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from asyncua.crypto.cert_gen import generate_private_key, generate_self_signed_app_certificate
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from iot_connector.sources.base import SourceConfig
from iot_connector.sources.opcua.config import OpcuaConfig

log = logging.getLogger(__name__)
MARKER_SUFFIX = ".generated.json"
DEFAULT_VALIDITY_DAYS = 365


@dataclass(frozen=True)
class Renewal:
    cert_file: Path
    backup: Path
    old_not_after: dt.datetime
    new_not_after: dt.datetime


def _marker(cert_file: Path) -> Path:
    return cert_file.with_name(cert_file.name + MARKER_SUFFIX)


def _sha256(der: bytes) -> str:
    digest = hashes.Hash(hashes.SHA256())
    digest.update(der)
    return digest.finalize().hex()


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _save(cert_file: Path, cert: x509.Certificate) -> None:
    der = cert.public_bytes(serialization.Encoding.DER)
    _write(cert_file, der)
    marker = {"generated_by": "iot-connector", "sha256": _sha256(der)}
    _write(_marker(cert_file), json.dumps(marker).encode())


def is_agent_generated(cert_file: Path) -> bool:
    """True when the agent generated `cert_file` and nobody replaced it since."""
    marker = _marker(Path(cert_file))
    if not (marker.is_file() and Path(cert_file).is_file()):
        return False
    try:
        recorded = json.loads(marker.read_text()).get("sha256")
    except (ValueError, AttributeError):
        return False
    return recorded == _sha256(Path(cert_file).read_bytes())


def generate_certificate(
    cert_file: Path, key_file: Path, application_uri: str, days: int = DEFAULT_VALIDITY_DAYS
) -> x509.Certificate:
    """A self-signed OPC-UA client certificate (DER) for `application_uri`, with a new RSA key (PEM, 0600)
    unless `key_file` exists; marked as agent-generated."""
    cert_file, key_file = Path(cert_file), Path(key_file)
    cert_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    if key_file.exists():
        key = _load_key(key_file)
    else:
        key = generate_private_key()
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        _write(key_file, pem, 0o600)
    names = [x509.UniformResourceIdentifier(application_uri), x509.DNSName(socket.gethostname())]
    cert = generate_self_signed_app_certificate(
        key, application_uri, {}, names, extended=[ExtendedKeyUsageOID.CLIENT_AUTH], days=days
    )
    _save(cert_file, cert)
    return cert


def _load_key(key_file: Path) -> RSAPrivateKey:
    key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    if not isinstance(key, RSAPrivateKey):
        raise ValueError(f"{key_file}: an OPC-UA client key must be RSA")
    return key


def renew_if_due(
    cert_file: Path, key_file: Path, renew_days: int, validity_days: int, now: dt.datetime | None = None
) -> Renewal | None:
    """Re-issue an agent-generated certificate that expires within `renew_days`; None when nothing was due
    (or the certificate is user-supplied)."""
    cert_file, key_file = Path(cert_file), Path(key_file)
    if not is_agent_generated(cert_file):
        return None
    now = now or dt.datetime.now(dt.timezone.utc)
    old = x509.load_der_x509_certificate(cert_file.read_bytes())
    if old.not_valid_after_utc - now > dt.timedelta(days=renew_days):
        return None
    key = _load_key(key_file)
    common_name = old.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    names = list(old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    try:
        usages = list(old.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH]
    new = generate_self_signed_app_certificate(key, str(common_name), {}, names, extended=usages, days=validity_days)
    backup = cert_file.with_name(cert_file.name + ".bak")
    shutil.copy2(cert_file, backup)
    _save(cert_file, new)
    return Renewal(cert_file, backup, old.not_valid_after_utc, new.not_valid_after_utc)


def renew_sources(
    sources: Sequence[SourceConfig], renew_days: int, validity_days: int, now: dt.datetime | None = None
) -> dict[str, str]:
    """Renew what is due among the OPC-UA sources' generated certificates: {source name: what happened}.
    A failure on one source is reported in its message and never stops the others."""
    done: dict[str, str] = {}
    for cfg in sources:
        if not (isinstance(cfg, OpcuaConfig) and cfg.cert_file and cfg.key_file):
            continue
        try:
            renewal = renew_if_due(Path(cfg.cert_file), Path(cfg.key_file), renew_days, validity_days, now)
        except (OSError, ValueError) as exc:
            done[cfg.name] = f"client certificate {cfg.cert_file} could not be renewed: {type(exc).__name__}: {exc}"
            log.error("opcua source %s: %s", cfg.name, done[cfg.name])
            continue
        if renewal is not None:
            done[cfg.name] = (
                f"client certificate {renewal.cert_file} (expiring {renewal.old_not_after:%Y-%m-%d}) renewed until "
                f"{renewal.new_not_after:%Y-%m-%d}; the old one is kept as {renewal.backup.name}; add the new one "
                "to the server's trusted certificates"
            )
            log.warning("opcua source %s: %s", cfg.name, done[cfg.name])
    return done
