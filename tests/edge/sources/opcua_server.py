"""A real asyncua Server on 127.0.0.1 for the tests: a small plant address space, optional security."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from pathlib import Path

from asyncua import Server, ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.crypto.truststore import TrustStore
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions
from asyncua.server.user_managers import UserManager
from cryptography.x509.oid import ExtendedKeyUsageOID

from iot_connector.sources.opcua import OpcuaConfig

PLANT = "urn:test:plant"
SERVER_URI = "urn:test:opcua-server"
VALUES: dict[str, tuple[object, ua.VariantType]] = {
    "Temperature": (20.5, ua.VariantType.Double),
    "Count": (-42, ua.VariantType.Int32),
    "Total": (2**40 + 3, ua.VariantType.UInt64),
    "Running": (True, ua.VariantType.Boolean),
    "Label": ("batch-7", ua.VariantType.String),
    "Ratio": (0.25, ua.VariantType.Float),
    "Started": (dt.datetime(2025, 3, 1, 12, 0, tzinfo=dt.timezone.utc), ua.VariantType.DateTime),
    "Profile": ([1.0, 2.0, 3.5], ua.VariantType.Double),
}

logging.getLogger("asyncua").setLevel(logging.ERROR)


def node_id(name: str) -> str:
    return f"nsu={PLANT};s=Line1.{name}"


def source_config(endpoint: str, **extra) -> OpcuaConfig:
    """A source config with fast test timings; monitors Temperature unless `nodes` is given."""
    extra.setdefault("nodes", [node_id("Temperature")])
    return OpcuaConfig(
        name="opc", endpoint=endpoint, publishing_interval_ms=50, reconnect_max_delay_s=1, timeout_s=2, **extra
    )


class PasswordUsers(UserManager):
    """Accepts only the given user names with their passwords."""

    def __init__(self, users: dict[str, str]):
        self.users = users

    def get_user(self, iserver, username=None, password=None, certificate=None):
        if username in self.users and self.users[username] == password:
            return User(role=UserRole.User)
        return None


class PlantServer:
    """Start/stop/restart on a fixed port; `extra_namespaces` shifts our namespace index on restart."""

    def __init__(
        self, port: int, pki: Path | None = None, trusted_clients: Path | None = None, users: dict | None = None
    ):
        self.port = port
        self.users = users
        self.pki = pki
        self.trusted_clients = trusted_clients
        self.server: Server | None = None
        self.cert = pki / "server_cert.der" if pki else None
        self.key = pki / "server_key.pem" if pki else None

    @property
    def endpoint(self) -> str:
        return f"opc.tcp://127.0.0.1:{self.port}/test/"

    async def make_certificate(self) -> None:
        assert self.key is not None
        assert self.cert is not None
        await setup_self_signed_certificate(
            self.key,
            self.cert,
            SERVER_URI,
            "127.0.0.1",
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            {"commonName": "test-server"},
        )

    async def start(self, extra_namespaces: int = 0) -> PlantServer:
        server = Server(user_manager=PasswordUsers(self.users) if self.users else None)
        await server.init()
        if self.users:
            server.set_identity_tokens([ua.UserNameIdentityToken])
        server.set_endpoint(self.endpoint)
        await server.set_application_uri(SERVER_URI)
        if self.pki:
            await self.make_certificate()
            server.set_security_policy(
                [
                    ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt,
                    ua.SecurityPolicyType.Aes256Sha256RsaPss_SignAndEncrypt,
                    ua.SecurityPolicyType.Basic256Sha256_Sign,
                ]
            )
            await server.load_certificate(str(self.cert))
            await server.load_private_key(str(self.key))
            store = TrustStore([self.trusted_clients], [])
            await store.load()
            server.set_certificate_validator(
                CertificateValidator(
                    CertificateValidatorOptions.TRUSTED_VALIDATION | CertificateValidatorOptions.PEER_CLIENT,
                    trust_store=store,
                )
            )
        else:
            server.set_security_policy([ua.SecurityPolicyType.NoSecurity])
        for i in range(extra_namespaces):
            await server.register_namespace(f"urn:test:other{i}")
        idx = await server.register_namespace(PLANT)
        line = await server.nodes.objects.add_object(ua.NodeId("Line1", idx), ua.QualifiedName("Line1", idx))
        motor = await line.add_object(ua.NodeId("Line1.Motor", idx), ua.QualifiedName("Motor", idx))
        await motor.add_variable(ua.NodeId("Line1.Motor.Speed", idx), ua.QualifiedName("Speed", idx), 1500.0)
        await line.add_variable(ua.NodeId("Line1.Level", idx), ua.QualifiedName("Level", idx), 20.5)  # deadband test
        for name, (value, vtype) in VALUES.items():
            await line.add_variable(ua.NodeId(f"Line1.{name}", idx), ua.QualifiedName(name, idx), value, vtype)
        await server.start()
        self.server, self.idx = server, idx
        return self

    async def write(self, name: str, value: object, vtype: ua.VariantType = ua.VariantType.Double) -> None:
        assert self.server is not None
        await self.server.get_node(ua.NodeId(f"Line1.{name}", self.idx)).write_value(ua.Variant(value, vtype))

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()
            self.server = None
            await asyncio.sleep(0.1)
