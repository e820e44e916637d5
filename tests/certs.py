"""Throw-away certificates for TLS tests, made with `cryptography`: self-signed ones (a server that is its
own CA) and a test CA with the server and client certificates it signs. Valid from 5 minutes ago for a day."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


@dataclass
class Issued:
    cert: Path
    key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _builder(subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> x509.CertificateBuilder:
    now = dt.datetime.now(dt.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )


def _san(hosts: tuple[str, ...]) -> x509.SubjectAlternativeName:
    """The DNS names given, and 127.0.0.1 (every test server listens there)."""
    return x509.SubjectAlternativeName(
        [x509.DNSName(h) for h in hosts] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _save(directory: Path, stem: str, cert_pem: bytes, key_pem: bytes) -> Issued:
    directory.mkdir(parents=True, exist_ok=True)
    issued = Issued(directory / f"{stem}.pem", directory / f"{stem}.key")
    issued.cert.write_bytes(cert_pem)
    issued.key.write_bytes(key_pem)
    return issued


def _write(directory: Path, stem: str, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey) -> Issued:
    return _save(directory, stem, cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def self_signed_pem(common_name: str, hosts: tuple[str, ...] = ("localhost",)) -> tuple[bytes, bytes]:
    """(certificate PEM, private key PEM) of a self-signed CA certificate for `hosts` and 127.0.0.1."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(common_name, _name(common_name), key)
        .add_extension(_san(hosts), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)


def self_signed(
    directory: Path, common_name: str, hosts: tuple[str, ...] = ("localhost",), stem: str = "self"
) -> Issued:
    """`self_signed_pem` written to `<directory>/<stem>.pem` and `.key`."""
    return _save(directory, stem, *self_signed_pem(common_name, hosts))


class TestCA:
    """Signs server and client certificates valid for 127.0.0.1 / localhost for one day."""

    __test__ = False  # not a pytest class

    def __init__(self, directory: Path, cn: str = "iot-test-ca"):
        self.directory = directory
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.cert = (
            _builder(cn, _name(cn), self.key)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.files = _write(directory, "ca", self.cert, self.key)

    def issue(self, cn: str, *, server: bool) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = _builder(cn, self.cert.subject, key).add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        if server:
            builder = builder.add_extension(_san(("localhost",)), critical=False)
        return _write(self.directory, cn, builder.sign(self.key, hashes.SHA256()), key)
