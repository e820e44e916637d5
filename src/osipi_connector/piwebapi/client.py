"""The HTTP surface of PI Web API: one pooled session, auth, retries, the batch controller.

`PIWebAPIClient` is what the extractors use; the pieces live beside it: `transport` (session, retries,
error messages), `auth` (the four auth modes), `batch` (body, 207 answers, sequential fallback),
`errors` (PIWebAPIError). Knows nothing about Delta.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

import orjson
import requests

from osipi_connector.piwebapi.batch import (
    SubRequest,
    SubResponse,
    absolute,
    execution_order,
    parse_answer,
    request_object,
    resolve,
    retry_keys,
    with_query,
)
from osipi_connector.piwebapi.errors import PIWebAPIError, is_pi_json, not_pi_json, safe_url, server_errors
from osipi_connector.piwebapi.settings import ClientSettings, Credentials
from osipi_connector.piwebapi.transport import Answer, BodyError, Transport, backoff, encode_params

log = logging.getLogger("osipi_connector.piwebapi")

__all__ = ["PIClient", "PIWebAPIClient", "PIWebAPIError", "SubRequest", "SubResponse"]


Decode = Callable[[bytes], Any]  # JSON bytes -> object; raises orjson.JSONDecodeError on a bad body


class PIClient(Protocol):
    """What a connector run asks of its PI Web API client (`PIWebAPIClient`, or a test's wrapper of it)."""

    def get_json(self, resource: str, params: Mapping[str, Any] | None = None) -> Any: ...

    def get_bytes(self, resource: str, params: Mapping[str, Any] | None = None) -> bytes: ...

    def iter_items(
        self, resource: str, params: Mapping[str, Any] | None = None, page_size: int = 1000
    ) -> Iterator[dict]: ...

    def batch(self, requests: Mapping[str, SubRequest], *, decode: Decode | None = None) -> dict[str, SubResponse]: ...

    def requests_sent(self) -> int: ...

    def close(self) -> None: ...


def _json_body(response: Answer, decode: Decode = orjson.loads) -> Any:
    """The parsed body of a 2xx answer; a JSON body that cannot be parsed (cut) is worth another try, an HTML
    page (a login portal, a wrong URL) is not: it fails at once with its content type and first characters."""
    content = response.content
    if not content:
        return None
    try:
        data = decode(content)
    except orjson.JSONDecodeError as exc:
        content_type = response.headers.get("Content-Type", "")
        if not is_pi_json(content_type, content):
            raise not_pi_json(response.url, response.status_code, content_type, content) from None
        raise BodyError(f"the {response.status_code} answer is not valid JSON ({exc})") from None
    if isinstance(data, dict) and isinstance(data.get("WebException"), dict):  # failed while streaming (2017 R2+)
        errors = "; ".join(server_errors(data)) or "no message"
        raise BodyError(f"the server reported a WebException while sending the answer: {errors}")
    return data


def _sub_response(response: Answer) -> SubResponse:
    """A direct answer in the shape of a batch sub-response (the sequential fallback)."""
    if response.ok:
        content = _json_body(response)
    else:
        try:
            content = orjson.loads(response.content) if response.content else None
        except orjson.JSONDecodeError:
            content = response.content[:500].decode("utf-8", "replace")
    return SubResponse(response.status_code, content, dict(response.headers))


class PIWebAPIClient:
    """Thread-safe client; one per run, shared by the worker threads (pool sized to the concurrency)."""

    def __init__(self, settings: ClientSettings, credentials: Credentials | None = None):
        self.settings = settings
        self._transport = Transport(settings, credentials)
        self._batch_enabled = True  # False once POST /batch answered 405, for the client's lifetime
        self._retry_statuses = set(settings.retry.retry_statuses)

    @property
    def base_url(self) -> str:
        """e.g. `https://pi.example.com/piwebapi` (no trailing slash)."""
        return self.settings.url

    @property
    def session(self) -> requests.Session:
        """The pooled session (its `auth` is the configured auth object)."""
        return self._transport.session

    @property
    def batch_enabled(self) -> bool:
        """False after the server answered 405 to POST /batch: sub-requests then go one by one."""
        return self._batch_enabled

    def url(self, resource: str) -> str:
        return absolute(self.base_url, resource)

    def requests_sent(self) -> int:
        """HTTP requests the calling thread has sent with this client, every retry and batch POST counted
        (`pi_run_metrics.requests` sums the differences around each piece of work)."""
        return self._transport.sent_by_this_thread()

    def get_json(self, resource: str, params: Mapping[str, Any] | None = None) -> Any:
        """GET with retries (429/5xx/connection errors, Retry-After honoured); parsed JSON or PIWebAPIError."""
        return self._transport.send("GET", self.url(resource), encode_params(params), parse=_json_body)

    def get_bytes(self, resource: str, params: Mapping[str, Any] | None = None) -> bytes:
        """GET, the raw body (the fast path for large recorded answers parsed straight into Arrow).
        A body cut short is detected (Content-Length / chunked framing) and retried."""
        return self._transport.send("GET", self.url(resource), encode_params(params), parse=lambda r: r.content)

    def iter_items(
        self, resource: str, params: Mapping[str, Any] | None = None, page_size: int = 1000
    ) -> Iterator[dict]:
        """All `Items` of a startIndex/maxCount-paged collection (points, elements, event frames).
        Pages until a page shorter than `page_size` (PI's Links.Next is not always present)."""
        start = 0
        while True:
            page = self.get_json(resource, {**(params or {}), "startIndex": start, "maxCount": page_size})
            items = page.get("Items") if isinstance(page, dict) else None
            if not isinstance(items, list):
                url = safe_url(self.url(resource))
                raise PIWebAPIError(
                    f"{url} did not answer a collection (no Items list); is it a list resource?", url=url
                )
            yield from items
            if len(items) < page_size:
                return
            start += len(items)

    def batch(self, requests: Mapping[str, SubRequest], *, decode: Decode | None = None) -> dict[str, SubResponse]:
        """POST /batch (X-Requested-With set), 207 answer split per key; sub-requests that failed with a
        retriable status are retried; when /batch answers 405 (disabled) falls back to sequential GETs.
        Keys of the answer are the keys of `requests`.

        `decode` parses the 207 body instead of `orjson.loads` (the recorded-values extractor reads its
        Items as columns, `extract.recorded_scan`); retries, auth and the 405 fallback are the same, and
        the sequential fallback always uses orjson."""
        if not requests:
            return {}
        answers = self._batch_round(requests, decode or orjson.loads)
        retry = self.settings.retry
        for round_number in range(1, retry.max_attempts):
            if not self._batch_enabled:
                break  # sequential answers already went through the per-request retries
            again = retry_keys(requests, answers, self._retry_statuses)
            if not again:
                break
            wait = backoff(retry, round_number)
            log.warning(
                "%d of %d batch sub-requests failed transiently; retry in %.1f s", len(again), len(requests), wait
            )
            time.sleep(wait)
            answers.update(self._batch_round({k: requests[k] for k in again}, decode or orjson.loads))
        return {k: answers[k] for k in requests}

    def _batch_round(self, subs: Mapping[str, SubRequest], decode: Decode) -> dict[str, SubResponse]:
        queries: dict[Any, str] = {}  # sub-requests mostly share their parameters (one query per tag otherwise)
        urls = {k: self._sub_url(sub, queries) for k, sub in subs.items()}
        if self._batch_enabled:
            answer = self._post_batch({k: request_object(urls[k], sub) for k, sub in subs.items()}, decode)
            if answer is not None:
                return parse_answer(subs, answer)
            self._batch_enabled = False
            log.warning(
                "PI Web API's batch controller is disabled (POST /batch answered 405); sending requests one by one"
            )
        results: dict[str, SubResponse] = {}
        for key in execution_order(subs):
            sub = subs[key]
            target = resolve(key, sub, urls[key], results) if sub.parent_ids or sub.parameters else urls[key]
            if isinstance(target, SubResponse):
                results[key] = target
                continue
            results[key] = self._transport.send(sub.method.upper(), target, accept=lambda r: True, parse=_sub_response)
        return {k: results[k] for k in subs}

    def _sub_url(self, sub: SubRequest, queries: dict[Any, str]) -> str:
        """The absolute URL of a sub-request; the query text of equal parameters is encoded once per round."""
        url = self.url(sub.resource)
        try:
            key = tuple((name, type(value), value) for name, value in sub.params.items())  # True is not 1 here
            query = queries.get(key)
        except TypeError:  # a list among the values: not hashable
            return with_query(url, encode_params(sub.params))
        if query is None:
            query = queries[key] = with_query("", encode_params(sub.params))  # "?..." or "" (no parameters)
        return url + ("&" + query[1:] if query and "?" in url else query)

    def _post_batch(self, body: dict[str, Any], decode: Decode) -> Any:
        """The parsed 207 body, or None when the batch controller is disabled (405)."""

        def parse(response: Answer) -> Any:
            if response.status_code == 405:
                return None
            data = _json_body(response, decode)
            if not isinstance(data, dict):
                raise BodyError("the batch answer is not a JSON object")
            return data

        return self._transport.send(
            "POST",
            self.url("batch"),
            json_body=orjson.dumps(body),
            accept=lambda r: r.ok or r.status_code == 405,
            parse=parse,
        )

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> PIWebAPIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
