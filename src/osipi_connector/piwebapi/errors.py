"""PIWebAPIError and the messages that tell a user what a failed request means and what to change.

Messages name the URL (user info and secret-looking query values removed), the status and the server's
`Errors` text. They never contain credentials: those live only in the auth objects.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

_SECRET_PARAM = re.compile(r"token|secret|password|passwd|apikey|api_key|code|signature", re.IGNORECASE)
_MAX_URL = 300


class PIWebAPIError(RuntimeError):
    """A request failed for good (after retries). `status` is the HTTP status (0: no answer);
    `errors` the server's `Errors` list when it sent one. Never contains secrets."""

    def __init__(self, message: str, status: int = 0, errors: list[str] | None = None, url: str = ""):
        super().__init__(message)
        self.status = status
        self.errors = errors or []
        self.url = url


def safe_url(url: str) -> str:
    """The URL without user info and with secret-looking query values redacted, cut to a readable length."""
    parts = urlsplit(url)
    netloc = parts.hostname or ""
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if _SECRET_PARAM.search(k) else v) for k, v in pairs], safe="*;:/")
    text = urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    return text if len(text) <= _MAX_URL else text[: _MAX_URL - 3] + "..."


def server_errors(body: bytes | Any) -> list[str]:
    """PI's `{"Errors": [...]}` (also inside `WebException`), an OAuth `error`, or a short plain text."""
    data = body
    if isinstance(body, (bytes, bytearray)):
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            text = bytes(body[:200]).decode("utf-8", "replace").strip()
            return [text] if text and "<" not in text[:1] else []
    if isinstance(data, dict):
        if isinstance(data.get("WebException"), dict):
            data = data["WebException"]
        errors = data.get("Errors")
        if isinstance(errors, list):
            return [str(e) for e in errors]
        if isinstance(data.get("error"), str):  # OAuth token endpoint
            return [data["error"] + (f": {data['error_description']}" if data.get("error_description") else "")]
    if isinstance(data, str) and data:
        return [data[:200]]
    return []


def _advice(status: int, method: str, challenge: str) -> str:
    if status == 401:
        offered = f" (the server offers: {challenge})" if challenge else ""
        return (
            "the server did not accept the credentials: check the user name and password / token / client "
            f"credentials and that pi_web_api.auth_type matches an authentication method the server allows{offered}"
        )
    if status == 403:
        if method != "GET":
            return (
                "a 403 on a POST is PI Web API's CSRF defense: this client always sends X-Requested-With, so check "
                "that no proxy strips it; otherwise the user lacks a PI identity mapping or permission"
            )
        return "the user is authenticated but not allowed: check the PI identity mapping and the object's security"
    if status == 404:
        return (
            "check the WebID or path: the object may have been deleted or renamed, the WebID may come from another "
            "server, or the URL may not end in /piwebapi"
        )
    if status == 400:
        return "the server rejected a parameter (its message above says which); fix the request or the configuration"
    if status == 405:
        return "the server does not allow this method on this resource (a disabled controller?)"
    if status == 429:
        return (
            "the server's rate limit was still reached after every retry: lower performance.max_concurrency "
            "or ask the PI admin to raise RateLimitMaxRequests"
        )
    if status >= 500:
        return (
            "the server kept failing after every retry; check the PI Web API and PI Data Archive / AF server health "
            "(a 500 can also mean missing permissions on the AF or Data Archive side)"
        )
    return "see the server's message"


def is_pi_json(content_type: str, body: bytes | bytearray) -> bool:
    """Could `body` be a PI Web API answer? PI answers JSON; a login page, a proxy's error page or a web
    server at the wrong URL answer HTML (or another type), which no retry will turn into JSON."""
    start = bytes(body[:64]).lstrip()[:1]
    if start in (b"{", b"["):  # JSON, perhaps cut short: worth another try whatever the header says
        return True
    return start != b"<" and (not content_type or "json" in content_type.lower())


def body_start(body: bytes | bytearray, length: int = 120) -> str:
    """The first characters of a body on one line, for an error message."""
    return " ".join(bytes(body[: length * 2]).decode("utf-8", "replace").split())[:length]


def not_pi_json(url: str, status: int, content_type: str, body: bytes) -> PIWebAPIError:
    """The error for an answer that is not PI Web API JSON (raised at once: retrying cannot change it)."""
    message = (
        f"{safe_url(url)} answered {status} with {content_type or 'no content type'}, not PI Web API JSON: "
        f"{body_start(body)!r}. Check pi_web_api.url (it must end in /piwebapi) and whether a login page, "
        "a single-sign-on portal or a proxy answers instead of PI Web API (auth_type and credentials)."
    )
    return PIWebAPIError(message, status=status, url=safe_url(url))


def http_error(
    method: str,
    url: str,
    status: int,
    body: bytes | Any,
    attempts: int,
    challenge: str = "",
    content_type: str = "",
) -> PIWebAPIError:
    """The error for a final non-2xx answer."""
    errors = server_errors(body)
    said = f": {'; '.join(e.rstrip('.') for e in errors)}" if errors else ""
    if not errors and isinstance(body, bytes | bytearray) and body and not is_pi_json(content_type, body):
        said = f" with {content_type or 'no content type'}, not PI Web API JSON: {body_start(body)!r}"
    tries = f" after {attempts} tries" if attempts > 1 else ""
    message = (
        f"PI Web API answered {status} to {method} {safe_url(url)}{tries}{said}. {_advice(status, method, challenge)}."
    )
    return PIWebAPIError(message, status=status, errors=errors, url=safe_url(url))


def transport_error(method: str, url: str, what: str, advice: str, status: int = 0) -> PIWebAPIError:
    """The error for a request that got no usable answer (connection, TLS, timeout, cut or unparsable body)."""
    message = f"{method} {safe_url(url)} failed: {what}. {advice}."
    return PIWebAPIError(message, status=status, url=safe_url(url))
