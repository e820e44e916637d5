"""Building a connected asyncua Client from the config: security policy, certificates, trust list, identity."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from asyncua import Client, ua
from asyncua.crypto import security_policies
from asyncua.crypto.validator import CertificateValidator, CertificateValidatorOptions

from iot_connector.compat.asyncua import TrustList
from iot_connector.sources.opcua.certificates import generate_certificate
from iot_connector.sources.opcua.config import OpcuaConfig

log = logging.getLogger(__name__)

# Concrete classes (set_security instantiates them), not their abstract SecurityPolicy base.
POLICIES: dict[
    str, type[security_policies.SecurityPolicyBasic256Sha256 | security_policies.SecurityPolicyAes256Sha256RsaPss]
] = {
    "Basic256Sha256": security_policies.SecurityPolicyBasic256Sha256,
    "Aes256Sha256RsaPss": security_policies.SecurityPolicyAes256Sha256RsaPss,
}
# Key usage flags are left out: many vendor server certificates lack some of them; trust is what matters.
_SERVER_CHECKS = (
    CertificateValidatorOptions.TIME_RANGE
    | CertificateValidatorOptions.URI
    | CertificateValidatorOptions.TRUSTED
    | CertificateValidatorOptions.REVOKED
    | CertificateValidatorOptions.PEER_SERVER
)


async def trust_validator(paths: list[str]) -> CertificateValidator:
    for path in paths:
        if not Path(path).exists():
            raise FileNotFoundError(f"trusted_server_certs: {path} does not exist")
    store = TrustList([Path(p) for p in paths], [])
    try:
        await store.load_trust()
    except ValueError as exc:  # cryptography refuses an empty store
        raise ValueError(f"trusted_server_certs {paths}: no .der or .pem certificate found ({exc})") from exc
    return CertificateValidator(_SERVER_CHECKS, trust_store=store)


async def ensure_client_certificate(config: OpcuaConfig) -> tuple[Path, Path]:
    """Generate the client certificate + key once (persisted) so the server's trust survives restarts.
    Existing files are used as they are (renewal is `certificates.renew_if_due`, for generated ones only)."""
    if not (config.cert_file and config.key_file):
        raise ValueError("cert_file and key_file are needed for a security policy")
    cert, key = Path(config.cert_file), Path(config.key_file)
    if cert.exists() and not key.exists():
        raise ValueError(f"opcua source {config.name}: cert_file {cert} exists but key_file {key} does not")
    if not cert.exists():
        await asyncio.to_thread(generate_certificate, cert, key, config.application_uri)
        log.info(
            "opcua source %s: generated client certificate %s; add it to the server's trusted list", config.name, cert
        )
    return cert, key


async def new_client(config: OpcuaConfig) -> Client:
    """A Client with security and identity applied, not yet connected (set_security asks the server for its
    endpoint certificate, so the server must be reachable)."""
    # asyncua's supervisor resumes a lost session (keeping the server's queued values); its own backoff
    # (1 s doubling, no jitter) is capped at ours, so it never waits longer than Source.run would.
    client = Client(
        config.endpoint,
        timeout=config.timeout_s,
        auto_reconnect=True,
        reconnect_max_delay=config.reconnect_max_delay_s,
    )
    client.application_uri = config.application_uri
    if config.security_policy != "None":
        cert, key = await ensure_client_certificate(config)
        mode = ua.MessageSecurityMode[config.security_mode]
        await client.set_security(POLICIES[config.security_policy], str(cert), str(key), mode=mode)
        if config.trusted_server_certs:
            client.certificate_validator = await trust_validator(config.trusted_server_certs)
        else:
            log.warning("opcua source %s: trust_any_server is on; the server certificate is not checked", config.name)
    if config.username is not None:
        client.set_user(config.username)
        if config.password is not None:
            client.set_password(config.password.get_secret_value())
    return client
