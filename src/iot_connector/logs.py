"""Log lines safe to show and ship: secrets redacted, third-party libraries quiet unless asked for.

Why redaction at the handler: every line goes to stderr (the container log), and under `serve` also to the
GUI's Logs tab and its download. A library at DEBUG prints what it sends (asyncua logs
`ActivateSessionRequest(... Password=b'...')`), so a line is scrubbed once, before any handler writes it:
`key=value` / `"key": "value"` pairs whose key looks like a secret, `Authorization:` headers, `user:pass@`
in URLs, and any secret value of the running config (`remember_secrets`), whatever its wording.

Why quiet libraries: their INFO/DEBUG lines (one per OPC-UA publish) bury the agent's own. They log at
WARNING unless `log_levels` names them, e.g. `log_levels: {asyncua: DEBUG}`.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr

REDACTED = "<redacted>"
THIRD_PARTY = (
    "asyncua",
    "paho",
    "aiomqtt",
    "pymodbus",
    "urllib3",
    "requests",
    "grpc",
    "zerobus",
    "databricks",
    "uvicorn",
    "fastapi",
    "starlette",
    "httpx",
    "httpcore",
    "asyncio",
    "deltalake",
    "opentelemetry",
    "cryptography",
    "multipart",
    "python_multipart",
)
_KEY = (
    r"(?<![A-Za-z0-9])(?:client[_-]?secret|secret|passwords?|passwd|pwd|passphrase|private[_-]?key[_-]?pass\w*"
    r"|(?:access|refresh|id|auth|api|bearer|session|csrf)?[_-]?token|api[_-]?key|authorization)"
)
_VALUE = r"""(?:b?'(?:[^'\\]|\\.)*'|b?"(?:[^"\\]|\\.)*"|[^\s,;&)}\]'"]+)"""
_PAIR_RE = re.compile(rf"""(?P<key>{_KEY})(?P<q>["']?)(?P<sep>\s*[=:]\s*)(?P<value>{_VALUE})""", re.IGNORECASE)
_AUTH_RE = re.compile(r"\b(?P<scheme>Basic|Bearer|Digest|Negotiate)\s+[A-Za-z0-9+/=._~\-]{6,}", re.IGNORECASE)
_URL_RE = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^/@:\s]*:)[^/@\s]+@")
_known: set[str] = set()
_overridden: set[str] = set()


def redact(text: str) -> str:
    """`text` with anything that looks like a secret replaced by REDACTED."""
    for secret in sorted(_known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _URL_RE.sub(lambda m: f"{m['head']}{REDACTED}@", text)
    text = _AUTH_RE.sub(lambda m: f"{m['scheme']} {REDACTED}", text)
    return _PAIR_RE.sub(lambda m: f"{m['key']}{m['q']}{m['sep']}{REDACTED}", text)


def _secrets_of(node: Any) -> set[str]:
    if isinstance(node, SecretStr):
        return {node.get_secret_value()}
    if hasattr(node, "__pydantic_fields__"):
        node = {k: getattr(node, k) for k in node.__pydantic_fields__}
    if isinstance(node, dict):
        return set().union(*(_secrets_of(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_secrets_of(v) for v in node)) if node else set()
    if isinstance(node, str):
        from iot_connector.config.secrets import URL_CREDENTIALS_RE

        match = URL_CREDENTIALS_RE.match(node)
        return {match["password"]} if match else set()
    return set()


def remember_secrets(config: Any) -> None:
    """Redact the secret values of `config` (SecretStr fields, URL passwords) wherever they appear in a line.
    Values shorter than 4 characters are left to the patterns: replacing them would shred ordinary text."""
    _known.clear()
    _known.update(s for s in _secrets_of(config) if len(s) >= 4)


class RedactingFilter(logging.Filter):
    """Scrubs a record in place (message, arguments and traceback), so every handler after it sees the
    redacted line. Attached to the handlers, not a logger: records of child loggers skip logger filters."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        if record.exc_info:
            record.exc_text = record.exc_text or logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def apply_log_levels(level: str, overrides: Mapping[str, str] | None = None) -> None:
    """The agent's level on the root logger, WARNING on the libraries, then the explicit per-logger levels.
    Called at start and again whenever the Settings change, so a new level applies at once."""
    logging.getLogger().setLevel(level)
    for name in _overridden - set(overrides or {}):  # an override that was removed: back to inheriting
        logging.getLogger(name).setLevel(logging.NOTSET)
    for name in THIRD_PARTY:
        logging.getLogger(name).setLevel(logging.WARNING)
    for name, value in (overrides or {}).items():
        logging.getLogger(name).setLevel(value)
    _overridden.clear()
    _overridden.update(overrides or {})
