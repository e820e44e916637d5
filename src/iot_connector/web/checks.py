"""What the GUI verifies before it stores or uses something: uploaded PEM files, the ZeroBus connection.

Uploads: the file name must match a strict pattern in full (no folders, no control characters, not even a
trailing newline), an existing file of that name must be a regular file (lstat: a symlink is refused, never
followed), and the new content replaces it atomically through a fresh file created with O_EXCL|O_NOFOLLOW,
so a planted link cannot redirect the write and an overwrite never keeps an old, wider mode. Anything that
holds a private key (a key, or a certificate+key bundle uploaded as a certificate) is written 0600. The
content must parse as what it claims to be, so a wrong file is refused at upload time instead of failing a
TLS handshake hours later.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import stat
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from iot_connector.config.models import ZerobusSinkSettings

CERTS_ENV = "IOT_CONNECTOR_CERTS_DIR"
CERT_KINDS = ("ca", "client_cert", "server_cert", "client_key")
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$")
MAX_PEM_BYTES = 256 * 1024


class CheckError(ValueError):
    """A message for the operator: what is wrong and what to do."""


def certs_dir(config_dir: Path) -> Path:
    return Path(os.environ.get(CERTS_ENV) or Path(config_dir) / "certs")


def validate_pem(kind: str, pem: str) -> str:
    """Parse `pem` as `kind`; return a short description, or raise CheckError saying what is wrong."""
    if kind not in CERT_KINDS:
        raise CheckError(f"unknown certificate kind {kind!r} (one of {', '.join(CERT_KINDS)})")
    data = pem.encode()
    if len(data) > MAX_PEM_BYTES:
        raise CheckError(f"file too large ({len(data)} bytes, at most {MAX_PEM_BYTES}); upload one PEM file")
    if kind == "client_key":
        if b"-----BEGIN" not in data or b"PRIVATE KEY-----" not in data:
            raise CheckError("not a PEM private key: expected a '-----BEGIN ... PRIVATE KEY-----' block")
        try:
            key = load_pem_private_key(data, password=None)
        except TypeError:
            raise CheckError("the private key is encrypted; upload an unencrypted PEM key") from None
        except ValueError:
            raise CheckError("not a valid PEM private key (the block does not decode)") from None
        return f"private key ({type(key).__name__.lstrip('_')})"
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise CheckError("not a PEM certificate: expected a '-----BEGIN CERTIFICATE-----' block")
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CheckError("not a valid PEM certificate (the block does not decode)") from None
    return f"{len(certs)} certificate(s), first: {certs[0].subject.rfc4514_string()}"


def store_cert(config_dir: Path, name: str, kind: str, pem: str) -> tuple[Path, str]:
    """Validate and write one upload into the certs directory (anything holding a private key: mode 0600)."""
    if not NAME_RE.fullmatch(name or "") or ".." in name:
        raise CheckError(
            f"file name {name!r} refused: use letters, digits, '.', '_' or '-' only (no folders), e.g. broker-ca.pem"
        )
    described = validate_pem(kind, pem)
    folder = certs_dir(config_dir).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / name
    try:
        existing = os.lstat(target)
    except FileNotFoundError:
        existing = None
    if existing is not None and not stat.S_ISREG(existing.st_mode):
        kind_of = "a link" if stat.S_ISLNK(existing.st_mode) else "something other than a file"
        raise CheckError(f"file name {name!r} refused: {kind_of} of that name exists in the certs directory")
    mode = 0o600 if kind == "client_key" or "PRIVATE KEY-----" in pem else 0o644
    tmp = folder / f".upload-{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, mode)  # exactly `mode`, whatever the umask
        with os.fdopen(fd, "w") as fh:
            fh.write(pem)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)  # rename never follows a link at `target`
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return target, described


def cert_file(config_dir: Path, name: str) -> Path:
    """An uploaded file by its listed name: a regular file in the certs directory (never a link), or CheckError."""
    if name not in list_certs(config_dir):
        raise CheckError(f"no uploaded file named {name[:100]!r}")
    path = certs_dir(config_dir) / name
    if not stat.S_ISREG(os.lstat(path).st_mode):
        raise CheckError(f"{name[:100]!r} is not a regular file")
    return path


def list_certs(config_dir: Path) -> list[str]:
    folder = certs_dir(config_dir)
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if NAME_RE.fullmatch(p.name) and p.is_file())


async def _reachable(url: str, label: str, timeout: float) -> str | None:
    parts = urllib.parse.urlsplit(url)
    host, port = parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
    except (OSError, asyncio.TimeoutError) as exc:
        reason = (
            "timed out"
            if isinstance(exc, asyncio.TimeoutError)
            else "connection refused"
            if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc)
            else (exc.strerror or type(exc).__name__)
        )
        return f"{label}: cannot reach {host}:{port} ({reason}); check the URL, DNS, firewall or proxy"
    writer.close()
    return None


def _token_request(settings: ZerobusSinkSettings, timeout: float) -> str | None:
    """Databricks OAuth machine-to-machine: a client_credentials grant on <workspace>/oidc/v1/token."""
    body = urllib.parse.urlencode({"grant_type": "client_credentials", "scope": "all-apis"}).encode()
    request = urllib.request.Request(settings.workspace_url.rstrip("/") + "/oidc/v1/token", data=body)
    secret = settings.client_secret.get_secret_value()
    request.add_header("Authorization", "Basic " + _basic(settings.client_id, secret))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code in (400, 401, 403):
            return f"OAuth: the workspace refused the client id/secret (HTTP {exc.code}); check the service principal"
        return f"OAuth: token endpoint answered HTTP {exc.code}; check the workspace URL"
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return f"OAuth: token request failed ({type(exc).__name__}); check the workspace URL"
    return None


def _basic(user: str, password: str) -> str:
    import base64

    return base64.b64encode(f"{user}:{password}".encode()).decode()


async def check_zerobus(settings: ZerobusSinkSettings, timeout: float = 5.0) -> list[str]:
    """Each step that failed, in order (empty = reachable and the credentials were accepted)."""
    problems = [
        p
        for p in await asyncio.gather(
            _reachable(settings.workspace_url, "workspace URL", timeout),
            _reachable(settings.zerobus_endpoint, "ZeroBus endpoint", timeout),
        )
        if p
    ]
    if not any(p.startswith("workspace URL") for p in problems):
        token_problem = await asyncio.to_thread(_token_request, settings, timeout)
        if token_problem:
            problems.append(token_problem)
    return problems
