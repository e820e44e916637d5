"""One pooled requests.Session and the request loop: retries, timeouts, TLS, 401 renewal, error messages.

Two layers of retries, because they catch different failures:
* urllib3's Retry (in the adapter): connection errors, dropped connections and retriable statuses
  (429/5xx by default), with exponential backoff + jitter and the server's Retry-After honoured;
* `Transport.send`: bodies cut in the middle or not parseable, which urllib3 cannot see because they
  fail while requests reads the body, after urllib3 has returned.
Every request the connector makes is a read (GETs, or a POST /batch of GETs, or a token request),
so retrying POST is safe here.

Bodies are read here, in BODY_CHUNK_BYTES pieces (requests reads them in 10 KiB pieces when it reads them
itself), and handed on as an `Answer`: errors while reading the body get the same messages and retries as
before, and the extractor's 50 MB /batch answers cost ~0.07 µs of CPU less per value.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import ConnectTimeoutError, MaxRetryError, NewConnectionError, ReadTimeoutError, ResponseError
from urllib3.response import BaseHTTPResponse
from urllib3.util.retry import Retry

from osipi_connector.piwebapi.auth import BearerAuth, build_auth, sent_token
from osipi_connector.piwebapi.errors import PIWebAPIError, http_error, safe_url, transport_error
from osipi_connector.piwebapi.settings import ClientSettings, Credentials, RetrySettings

log = logging.getLogger("osipi_connector.piwebapi")

CSRF_HEADER = "X-Requested-With"
T = TypeVar("T")

BODY_CHUNK_BYTES = 1 << 20
"""Piece size for reading bodies: 1 MiB instead of requests' 10 KiB, i.e. ~100× fewer trips through the
requests → urllib3 → http.client generators per body (measured in docs/benchmarks.md, "HTTP body")."""


@dataclass(frozen=True)
class Answer:
    """One HTTP answer with its body already read (and its connection back in the pool)."""

    status_code: int
    url: str
    headers: Mapping[str, str]
    content: bytes
    tries: int = 1  # how many times urllib3 sent the request (its Retry history + 1)

    @property
    def ok(self) -> bool:
        return self.status_code < 400


class BodyError(Exception):
    """A 2xx answer whose body is unusable (cut, not JSON, or a WebException); worth another try."""


class _QuietRetries(logging.Filter):
    """Drops urllib3's own `Retrying (PIRetry(total=...)) after connection broken by ...` warnings for our
    retries (other urllib3 users keep theirs): PIRetry logs one line of its own per retry instead (what
    failed, which try), without urllib3's object dumps."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (str(record.msg).startswith("Retrying (") and args and isinstance(args[0], PIRetry))


logging.getLogger("urllib3.connectionpool").addFilter(_QuietRetries())


def backoff(settings: RetrySettings, retry_number: int) -> float:
    """Wait before retry number `retry_number` (1-based): doubles from backoff_seconds, capped, with
    "equal jitter" (half fixed, half random) so parallel workers do not retry in lock-step."""
    base = min(settings.max_backoff_seconds, settings.backoff_seconds * 2 ** (retry_number - 1))
    return base / 2 + random.uniform(0, base / 2)


class PIRetry(Retry):
    """urllib3 Retry with our backoff (urllib3's first retry does not wait) and a cap on Retry-After."""

    def __init__(self, *args: Any, settings: RetrySettings | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.settings = settings or RetrySettings()

    def new(self, **kw: Any) -> PIRetry:
        retry = super().new(**kw)
        retry.settings = self.settings
        return retry

    def get_backoff_time(self) -> float:
        retries = len(self.history)
        return backoff(self.settings, retries) if retries else 0.0

    def get_retry_after(self, response: BaseHTTPResponse) -> float | None:
        wait = super().get_retry_after(response)
        return None if wait is None else min(wait, self.settings.max_retry_after_seconds)

    def increment(
        self,
        method: str | None = None,
        url: str | None = None,
        response: BaseHTTPResponse | None = None,
        error: Exception | None = None,
        _pool: Any = None,
        _stacktrace: Any = None,
    ) -> PIRetry:
        """One log line per retry (urllib3's own warning is filtered out: `_QuietRetries`); raises
        MaxRetryError when no try is left, which `Transport` turns into one clear message."""
        retry = super().increment(method, url, response, error, _pool, _stacktrace)
        what = _reason(error) if error is not None else f"HTTP {response.status}" if response is not None else "?"
        where = f"{_pool.scheme}://{_pool.host}:{_pool.port}" if _pool is not None else ""
        log.warning(
            "%s %s: %s; try %d of %d failed, retrying",
            method,
            safe_url(where + (url or "")),
            what,
            len(retry.history),
            self.settings.max_attempts,
        )
        return retry


def make_retry(settings: RetrySettings) -> PIRetry:
    return PIRetry(
        total=settings.max_attempts - 1,
        other=0,  # TLS and other non-transient errors fail at once
        redirect=5,
        status_forcelist=settings.retry_statuses,
        allowed_methods=None,  # every method: all requests are reads (see the module docstring)
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer comes back and gets a message of ours
        raise_on_redirect=False,
        settings=settings,
    )


def make_session(settings: ClientSettings) -> requests.Session:
    session = requests.Session()
    adapter = HTTPAdapter(
        pool_connections=4,  # hosts (PI Web API, identity provider)
        pool_maxsize=settings.max_connections,
        max_retries=make_retry(settings.retry),
    )
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers[CSRF_HEADER] = "XMLHttpRequest"  # PI's CSRF defense wants it on every POST; harmless on GET
    session.headers["Accept"] = "application/json"
    session.verify = settings.ca_bundle if settings.ca_bundle else settings.verify_ssl
    session.trust_env = True  # proxies and REQUESTS_CA_BUNDLE from the environment, as users expect
    return session


def _tries(response: requests.Response) -> int:
    """How many times urllib3 sent this request (its Retry object keeps the history)."""
    retries = getattr(response.raw, "retries", None)
    return len(retries.history) + 1 if retries is not None else 1


def read_answer(response: requests.Response) -> Answer:
    """The answer with its body read in BODY_CHUNK_BYTES pieces through requests' own `iter_content`, which
    turns a cut body into ChunkedEncodingError and a read time-out into ConnectionError, as `.content` does.
    The response is closed either way: read to the end it returns its connection to the pool, cut it drops it."""
    try:
        content = b"".join(response.iter_content(BODY_CHUNK_BYTES))
    finally:
        response.close()
    return Answer(response.status_code, response.url or "", response.headers, content, _tries(response))


def _challenge(response: Answer) -> str:
    header = response.headers.get("WWW-Authenticate", "")
    return ", ".join(sorted({part.strip().split(" ")[0] for part in header.split(",") if part.strip()}))


class Transport:
    """The session plus the request loop. Thread-safe: the session is only read after construction,
    auth objects guard their own state."""

    def __init__(self, settings: ClientSettings, credentials: Credentials | None):
        self.settings = settings
        self.session = make_session(settings)
        self.session.auth = build_auth(settings, credentials, self.session)
        # verify goes with each request: a session's own `verify` loses to REQUESTS_CA_BUNDLE (a requests quirk)
        self.options: dict[str, Any] = {
            "timeout": (settings.connect_timeout, settings.read_timeout),
            "verify": self.session.verify,
        }
        self._sent = threading.local()  # HTTP requests sent, per thread: see `sent_by_this_thread`

    def sent_by_this_thread(self) -> int:
        """HTTP requests this thread has sent through this transport (each retry counts): a caller takes the
        difference around its own work, which stays exact while other threads share the transport."""
        return getattr(self._sent, "count", 0)

    def _count(self, requests: int) -> None:
        self._sent.count = self.sent_by_this_thread() + requests

    def close(self) -> None:
        self.session.close()

    def _raw(self, method: str, url: str, params: Any, json_body: bytes | None) -> Answer:
        """One request through the adapter's retries; a renewed token once after a 401."""
        headers = {"Content-Type": "application/json"} if json_body is not None else None

        def once() -> requests.Response:
            # stream=True: the body is read by read_answer in large pieces, not by requests in 10 KiB ones
            return self.session.request(
                method, url, params=params, data=json_body, headers=headers, stream=True, **self.options
            )

        response = once()
        self._count(_tries(response))
        answer = read_answer(response)
        auth = self.session.auth
        if answer.status_code == 401 and isinstance(auth, BearerAuth) and auth.invalidate(sent_token(response.request)):
            log.info("PI Web API answered 401; renewing the bearer token once")
            response = once()
            self._count(_tries(response))
            answer = read_answer(response)
        return answer

    def send(
        self,
        method: str,
        url: str,
        params: list[tuple[str, str]] | None = None,
        json_body: bytes | None = None,
        *,
        parse: Callable[[Answer], T],
        accept: Callable[[Answer], bool] = lambda r: r.ok,
    ) -> T:
        """Send, retry cut or unparsable bodies, and parse. `accept` says which answers are not errors
        (the batch accepts 405 to fall back); `parse` raises BodyError for a body worth another try."""
        attempts = self.settings.retry.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                response = self._request(method, url, params, json_body)
                if not accept(response):
                    tries = attempt - 1 + response.tries
                    raise http_error(
                        method,
                        response.url,
                        response.status_code,
                        response.content,
                        tries,
                        _challenge(response),
                        response.headers.get("Content-Type", ""),
                    )
                return parse(response)
            except (
                BodyError,
                requests.exceptions.ChunkedEncodingError,
                requests.exceptions.ContentDecodingError,
            ) as exc:
                what = str(exc) if isinstance(exc, BodyError) else "the answer was cut off before its end"
                if attempt == attempts:
                    raise transport_error(
                        method,
                        url,
                        f"{what} ({attempts} tries)",
                        "The server or a proxy keeps breaking answers; request smaller windows or fewer tags per "
                        "batch, or check proxies and PI Web API health",
                    ) from None
                wait = backoff(self.settings.retry, attempt)
                log.warning("%s %s: %s; retry %d in %.1f s", method, safe_url(url), what, attempt, wait)
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _request(self, method: str, url: str, params: list[tuple[str, str]] | None, json_body: bytes | None) -> Answer:
        """One request and its body, with requests' exceptions turned into PIWebAPIErrors that say what to do."""
        s = self.settings
        try:
            try:
                return self._raw(method, url, params, json_body)
            except (
                requests.exceptions.ConnectionError,
                requests.exceptions.Timeout,
                requests.exceptions.RetryError,
            ) as exc:
                ssl = isinstance(exc, requests.exceptions.SSLError)
                self._count(1 if ssl else s.retry.max_attempts)  # no answer: urllib3 used every try (TLS: one)
                raise
        except requests.exceptions.SSLError as exc:
            reason = _reason(exc)
            raise transport_error(
                method,
                url,
                f"TLS certificate verification failed ({reason})",
                "If PI Web API uses a self-signed or enterprise-CA certificate, set pi_web_api.ca_bundle to the "
                "CA's PEM file (verify_ssl: false disables the check; for tests only)",
            ) from None
        except requests.exceptions.ConnectTimeout:
            raise transport_error(
                method,
                url,
                f"no connection within connect_timeout={s.connect_timeout:g} s ({s.retry.max_attempts} tries)",
                "Check pi_web_api.url, the network path and any proxy",
            ) from None
        except (requests.exceptions.ReadTimeout, requests.exceptions.ConnectionError) as exc:
            reason = _reason(exc)
            if "timed out" in reason.lower():
                raise transport_error(
                    method,
                    url,
                    f"no answer within read_timeout={s.read_timeout:g} s ({s.retry.max_attempts} tries)",
                    "Raise pi_web_api.timeout or request smaller windows / fewer tags per batch",
                ) from None
            raise transport_error(
                method,
                url,
                f"could not connect or the connection dropped ({reason}; {s.retry.max_attempts} tries)",
                "Check pi_web_api.url (host, port, http vs https), that PI Web API is running and reachable",
            ) from None
        except requests.exceptions.RetryError as exc:  # too many redirects and the like
            raise transport_error(method, url, _reason(exc), "Check pi_web_api.url") from None


def _reason(exc: BaseException) -> str:
    """The innermost cause of a requests/urllib3 error, without the URL (it may carry a query)."""
    cause: Any = exc.args[0] if exc.args and isinstance(exc.args[0], BaseException) else exc
    if isinstance(cause, MaxRetryError):
        cause = cause.reason
    if isinstance(cause, NewConnectionError):  # a ConnectTimeoutError subclass, but not a time-out
        return str(cause).rsplit(": ", 1)[-1]
    if isinstance(cause, (ConnectTimeoutError, ReadTimeoutError)):
        return "timed out"
    if isinstance(cause, ResponseError):
        return str(cause)
    text = str(cause)
    # urllib3 spells errors as "HTTPSConnectionPool(host=.., port=..): Max retries exceeded with url: /x?y (Caused by ..)"
    if "Caused by " in text:
        text = text.split("Caused by ", 1)[1].rstrip(")")
    return text[:300]


def encode_params(params: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """Query pairs PI understands: lists repeat the key, booleans are lower-case, None is left out."""
    pairs: list[tuple[str, str]] = []
    for key, value in (params or {}).items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if item is None:
                continue
            pairs.append((key, str(item).lower() if isinstance(item, bool) else str(item)))
    return pairs


__all__ = ["CSRF_HEADER", "Answer", "BodyError", "PIWebAPIError", "Transport", "backoff", "encode_params"]
