"""The HTTP surface of PI Web API: one pooled session, auth, retries, the batch controller.

CONTRACT (stub written first so the extractor and the client are built in parallel; the client
helper replaces the bodies, keeps the signatures). Knows nothing about Delta.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from osipi_connector.piwebapi.settings import ClientSettings, Credentials


class PIWebAPIError(RuntimeError):
    """A request failed for good (after retries). `status` is the HTTP status (0: no answer);
    `errors` the server's `Errors` list when it sent one. Never contains secrets."""

    def __init__(self, message: str, status: int = 0, errors: list[str] | None = None, url: str = ""):
        super().__init__(message)
        self.status = status
        self.errors = errors or []
        self.url = url


@dataclass
class SubRequest:
    """One entry of a /batch body. `resource` is relative to the base URL (e.g. `streams/{webid}/recorded`)
    or absolute; `params` become the query string."""

    resource: str
    params: Mapping[str, Any] = field(default_factory=dict)
    method: str = "GET"
    parent_ids: list[str] = field(default_factory=list)
    parameters: list[str] = field(default_factory=list)


@dataclass
class SubResponse:
    """One entry of a /batch answer (or of the sequential fallback): status, parsed JSON content."""

    status: int
    content: Any
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class PIWebAPIClient:
    """Thread-safe client; one per run, shared by the worker threads (pool sized to the concurrency)."""

    def __init__(self, settings: ClientSettings, credentials: Credentials | None = None):
        raise NotImplementedError

    @property
    def base_url(self) -> str:
        """e.g. `https://pi.example.com/piwebapi` (no trailing slash)."""
        raise NotImplementedError

    def get_json(self, resource: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET with retries (429/5xx/connection errors, Retry-After honoured); parsed JSON or PIWebAPIError."""
        raise NotImplementedError

    def get_bytes(self, resource: str, params: Mapping[str, Any] | None = None) -> bytes:
        """GET, the raw body (the fast path for large recorded answers parsed straight into Arrow)."""
        raise NotImplementedError

    def iter_items(
        self, resource: str, params: Mapping[str, Any] | None = None, page_size: int = 1000
    ) -> Iterator[dict]:
        """All `Items` of a startIndex/maxCount-paged collection (points, elements, event frames)."""
        raise NotImplementedError

    def batch(self, requests: Mapping[str, SubRequest]) -> dict[str, SubResponse]:
        """POST /batch (X-Requested-With set), 207 answer split per key; sub-requests that failed with a
        retriable status are retried; when /batch answers 405 (disabled) falls back to sequential GETs.
        Keys of the answer are the keys of `requests`."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> PIWebAPIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
