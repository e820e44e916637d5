"""The batch controller from the client's side: body building, 207 answers, follow-up batches, and the
sequential fallback for servers whose batch controller is disabled (POST /batch answers 405).

Wire format (PI Web API Batch Execute): the body is a JSON object keyed by our ids, each value a
request object (`Method`, absolute `Resource`, `ParentIds`, `Parameters`); the answer is 207 with the
same keys, each `{Status, Headers, Content}`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson
from jsonpath_ng.ext import parse as parse_jsonpath


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


_PLACEHOLDER = re.compile(r"\{(\d+)\}")


def absolute(base_url: str, resource: str) -> str:
    """An absolute URL for a resource relative to the base URL (a leading '/' is ignored)."""
    if "://" in resource or resource.startswith("$"):
        return resource
    return f"{base_url}/{resource.lstrip('/')}"


def with_query(url: str, pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return url
    # keep PI's separators and JSONPath placeholders readable: ';' in selectedFields, '{0}' in templates
    query = urlencode(pairs, safe=";:,*{}$")
    return f"{url}{'&' if '?' in url else '?'}{query}"


def request_object(url: str, sub: SubRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"Method": sub.method.upper(), "Resource": url}
    if sub.parent_ids:
        body["ParentIds"] = list(sub.parent_ids)
    if sub.parameters:
        body["Parameters"] = list(sub.parameters)
    return body


def parse_answer(keys: Iterable[str], answer: Any) -> dict[str, SubResponse]:
    """Split a 207 body into SubResponses in the order of `keys`; a key the server left out is reported
    as a failure of that key, not of the whole batch."""
    out: dict[str, SubResponse] = {}
    for key in keys:
        entry = answer.get(key) if isinstance(answer, dict) else None
        if not isinstance(entry, dict):
            out[key] = SubResponse(0, {"Errors": [f"The batch answer has no entry for request '{key}'."]})
            continue
        status = entry.get("Status")
        headers = entry.get("Headers")
        out[key] = SubResponse(
            status if isinstance(status, int) else 0,
            entry.get("Content"),
            headers if isinstance(headers, dict) else {},
        )
    return out


def retry_keys(requests: Mapping[str, SubRequest], answers: Mapping[str, SubResponse], statuses: set[int]) -> list[str]:
    """Keys to send again: those that failed with a retriable status, their descendants (which failed
    because of them or read their content), and the ancestors of all of these (JSONPaths read parents)."""
    children: dict[str, list[str]] = {k: [] for k in requests}
    for key, sub in requests.items():
        for parent in sub.parent_ids:
            children.setdefault(parent, []).append(key)
    chosen = {k for k, a in answers.items() if a.status in statuses or a.status == 0}
    stack = list(chosen)
    while stack:
        for child in children.get(stack.pop(), []):
            if child not in chosen:
                chosen.add(child)
                stack.append(child)
    stack = list(chosen)
    while stack:
        for parent in requests[stack.pop()].parent_ids:
            if parent not in chosen:
                chosen.add(parent)
                stack.append(parent)
    return [k for k in requests if k in chosen]


def execution_order(requests: Mapping[str, SubRequest]) -> list[str]:
    """Parents before children, otherwise the given order (for the sequential fallback)."""
    done: list[str] = []
    placed: set[str] = set()
    pending = list(requests)
    while pending:
        ready = [k for k in pending if all(p in placed or p not in requests for p in requests[k].parent_ids)]
        if not ready:  # a cycle: the server would reject the batch; run the rest as given
            ready = pending[:1]
        for key in ready:
            done.append(key)
            placed.add(key)
        pending = [k for k in pending if k not in placed]
    return done


@functools.lru_cache(maxsize=256)
def _compiled(path: str) -> Any:
    return parse_jsonpath(path)


def resolve(key: str, sub: SubRequest, url: str, results: Mapping[str, SubResponse]) -> str | SubResponse:
    """The URL of a dependent sub-request with its `{n}` placeholders filled from its parents' answers,
    as the server does; or the SubResponse the server would give when that is impossible."""
    failed = [p for p in sub.parent_ids if p not in results or not results[p].ok]
    if failed:
        return SubResponse(409, f"The following ParentIds did not complete successfully: {', '.join(failed)}.")
    document = {p: {"Status": r.status, "Headers": dict(r.headers), "Content": r.content} for p, r in results.items()}
    values: list[str] = []
    for path in sub.parameters:
        try:
            found = [m.value for m in _compiled(path).find(document)]
        except Exception as exc:  # jsonpath_ng's lexer and parser errors are plain Exceptions
            return SubResponse(400, {"Errors": [f"'{path}' in request '{key}' is not a valid JSONPath: {exc}"]})
        if not found:
            return SubResponse(
                400, {"Errors": [f"Some JSON paths did not select any tokens: '{path}' in request '{key}'."]}
            )
        if len(found) > 1:
            return SubResponse(
                400, {"Errors": [f"'{path}' in request '{key}' selected {len(found)} tokens; a Resource takes one."]}
            )
        token = found[0]
        values.append(token if isinstance(token, str) else "" if token is None else orjson.dumps(token).decode())
    if url.startswith("$"):
        return SubResponse(400, {"Errors": [f"Request '{key}': a JSONPath Resource needs the batch controller."]})
    try:
        return _PLACEHOLDER.sub(lambda m: values[int(m.group(1))], url)
    except IndexError:
        return SubResponse(400, {"Errors": [f"Request '{key}' uses a placeholder it has no Parameter for."]})
