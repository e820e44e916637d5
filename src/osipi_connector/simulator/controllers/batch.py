"""Batch Execute (`POST /batch`): many requests in one POST, answered 207 with one response per id.

Sub-requests go through the same in-process router as direct calls, as the batch's authenticated user
and without a second auth, CSRF or rate-limit check, so a sub-request answers exactly like a direct
call. What the real server does and what is a guess:

* documented (Batch Execute): ids -> request objects; `Resource` is an absolute URL (host and port
  ignored) or a JSONPath into a parent's response (`$.1.Headers.Location`); `Parameters` are JSONPaths
  whose tokens fill `{0}`, `{1}`... ; a `RequestTemplate` makes one sub-request per selected token and
  returns them as the content of a single outer response; the answer is 207.
* seen in responses captured from real servers (kukur's PI AF test fixtures): a templated answer is
  `{"Status": 207, "Headers": {}, "Content": {"Total": n, "Items": [{Status, Headers, Content}...]}}`
  even when every item succeeded; a request whose parent failed is not run and gets
  `{"Status": 409, "Headers": {}, "Content": "The following ParentIds did not complete successfully: X."}`
  (Content is a plain string there, not an `Errors` object); a JSONPath that selects nothing answers
  400 "Some JSON paths did not select any tokens".
* guesses: structural errors (unknown ParentIds, cycles, bad JSONPath syntax, unsupported Method,
  non-string Content) reject the whole batch with 400 and an `Errors` list; a parameter of a plain
  (non-template) request must select exactly one token (Json.NET's SelectToken throws on several);
  template parameters are zipped (each selects the same number of tokens, or exactly one, which is
  reused); `{n}` is substituted in Content as well as in Resource; an answer without a body has
  `"Content": null`; a JSONPath sees only the responses of the request's own ParentIds.
"""

from __future__ import annotations

import functools
import heapq
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson
from jsonpath_ng.exceptions import JSONPathError
from jsonpath_ng.ext import parse as parse_jsonpath

from osipi_connector.simulator.http import ApiError, LazyJson, Request, Response, method_not_allowed
from osipi_connector.simulator.recordedwindow import RecordedWindow, prefill

if TYPE_CHECKING:
    from jsonpath_ng import JSONPath

    from osipi_connector.simulator.core import Simulator

log = logging.getLogger("osipi_connector.simulator")

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}
_PLACEHOLDER = re.compile(r"\{(\d+)\}")
CHUNK = 1 << 16  # streamed answers go out in pieces of at least this many bytes
PREFILL_SLOTS = 1 << 17  # recorded windows made together: about this many slots (~17 MB of answers) at a time


@functools.lru_cache(maxsize=512)
def compile_path(text: str) -> JSONPath:
    """A parsed JSONPath (cached: clients send the same few paths over and over)."""
    if not text.startswith("$"):
        raise JSONPathError("a JSONPath starts with '$'")
    return parse_jsonpath(text)


@dataclass
class SubRequest:
    key: str
    index: int  # position in the body: ties in the execution order keep it
    method: str = "GET"
    resource: str | None = None
    template: str | None = None
    parameters: list[str] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)
    content: str | None = None
    parent_ids: list[str] = field(default_factory=list)


def _member(raw: dict[str, Any], name: str) -> Any:
    """A request member by name, case-insensitively (Json.NET binds PIRequest members that way)."""
    lname = name.lower()
    return next((v for k, v in raw.items() if k.lower() == lname), None)


def _string_list(value: Any) -> list[str] | None:
    if value is None:
        return []
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    return None


def parse_batch(body: bytes) -> list[SubRequest]:
    """Validate the whole body first, so a malformed batch runs nothing; 400 naming every problem."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ApiError(400, f"The batch request body is not valid JSON: {exc}.") from None
    if not isinstance(data, dict):
        raise ApiError(400, "The batch request body must be a JSON object mapping request ids to requests.")
    subs: list[SubRequest] = []
    errors: list[str] = []
    for index, (key, raw) in enumerate(data.items()):
        if not isinstance(raw, dict):
            errors.append(f"Request '{key}' must be a JSON object, not {type(raw).__name__}.")
            continue
        sub, problems = _parse_request(key, index, raw)
        subs.append(sub)
        errors.extend(problems)
    if errors:
        raise ApiError(400, *errors)
    errors.extend(_check_parents(subs))
    if errors:
        raise ApiError(400, *errors)
    return subs


def _parse_request(key: str, index: int, raw: dict[str, Any]) -> tuple[SubRequest, list[str]]:
    sub = SubRequest(key, index)
    errors: list[str] = []
    method = _member(raw, "Method")
    if method is None:
        method = "GET"
    if not isinstance(method, str) or method.upper() not in METHODS:
        errors.append(f"Request '{key}' has an unsupported Method {method!r}; use one of {', '.join(METHODS)}.")
    else:
        sub.method = method.upper()
    resource, template = _member(raw, "Resource"), _member(raw, "RequestTemplate")
    if template is not None:
        template_resource = _member(template, "Resource") if isinstance(template, dict) else None
        if not isinstance(template_resource, str) or not template_resource:
            errors.append(f"Request '{key}' has a RequestTemplate without a Resource string.")
        sub.template = template_resource
        if resource is not None:
            errors.append(f"Request '{key}' has both a Resource and a RequestTemplate; give one.")
    elif isinstance(resource, str) and resource:
        sub.resource = resource
    else:
        errors.append(f"Request '{key}' needs a Resource (a URL or a JSONPath) or a RequestTemplate.")
    parameters = _string_list(_member(raw, "Parameters"))
    if parameters is None:
        errors.append(f"Parameters of request '{key}' must be a list of JSONPath strings.")
    else:
        sub.parameters = parameters
    paths = list(sub.parameters)
    if sub.resource and sub.resource.startswith("$"):
        paths.append(sub.resource)
    for path in paths:
        try:
            compile_path(path)
        except JSONPathError as exc:
            errors.append(f"'{path}' in request '{key}' is not a valid JSONPath: {exc}")
    headers = _member(raw, "Headers")
    if headers is not None and not (isinstance(headers, dict) and all(isinstance(v, str) for v in headers.values())):
        errors.append(f"Headers of request '{key}' must be an object of header names to string values.")
    elif headers:
        sub.headers = {k.lower(): v for k, v in headers.items()}
    content = _member(raw, "Content")
    if content is not None and not isinstance(content, str):
        errors.append(f"Content of request '{key}' must be a string holding serialized JSON.")
    else:
        sub.content = content
    parent_ids = _string_list(_member(raw, "ParentIds"))
    if parent_ids is None:
        errors.append(f"ParentIds of request '{key}' must be a list of request ids.")
    else:
        sub.parent_ids = list(dict.fromkeys(parent_ids))
    return sub, errors


def _check_parents(subs: list[SubRequest]) -> list[str]:
    keys = {s.key for s in subs}
    errors = [
        f"Request '{s.key}' names ParentId '{p}', which is not a request in this batch."
        for s in subs
        for p in s.parent_ids
        if p not in keys
    ]
    if not errors:
        cycle = find_cycle(subs)
        if cycle:
            errors.append(f"ParentIds form a cycle: {' -> '.join(cycle)}.")
    return errors


def execution_order(subs: list[SubRequest]) -> list[SubRequest]:
    """Parents before children (Kahn's algorithm); otherwise the order of the body."""
    by_key = {s.key: s for s in subs}
    waiting = {s.key: len(s.parent_ids) for s in subs}
    children: dict[str, list[SubRequest]] = {s.key: [] for s in subs}
    for s in subs:
        for p in s.parent_ids:
            children[p].append(s)
    ready = [(s.index, s.key) for s in subs if not s.parent_ids]
    heapq.heapify(ready)
    order: list[SubRequest] = []
    while ready:
        _, key = heapq.heappop(ready)
        order.append(by_key[key])
        for child in children[key]:
            waiting[child.key] -= 1
            if waiting[child.key] == 0:
                heapq.heappush(ready, (child.index, child.key))
    return order


def find_cycle(subs: list[SubRequest]) -> list[str] | None:
    """One ParentIds cycle (for the error message), or None when the batch is a DAG."""
    done = {s.key for s in execution_order(subs)}
    if len(done) == len(subs):
        return None
    by_key = {s.key: s for s in subs}
    key = next(s.key for s in subs if s.key not in done)
    seen: list[str] = []
    while key not in seen:  # every request left over has a parent left over: walk up until one repeats
        seen.append(key)
        key = next(p for p in by_key[key].parent_ids if p not in done)
    return [*seen[seen.index(key) :], key]


def _token_text(token: Any) -> str:
    if isinstance(token, str):
        return token
    if token is None:
        return ""
    return orjson.dumps(token).decode()  # numbers and booleans as JSON spells them


def _substitute(text: str | None, values: list[str], key: str) -> str | None:
    if text is None:
        return None

    def value(match: re.Match[str]) -> str:
        n = int(match.group(1))
        if n >= len(values):
            raise ApiError(400, f"Request '{key}' uses {{{n}}} but has only {len(values)} Parameters.")
        return values[n]

    return _PLACEHOLDER.sub(value, text)


class BatchRun:
    """One batch: runs the sub-requests in order and keeps their answers for the JSONPaths of children."""

    def __init__(self, sim: Simulator, request: Request):
        self.sim = sim
        self.request = request
        self.results: dict[str, dict[str, Any]] = {}
        self.templated: set[str] = set()  # ids whose Content holds sub-responses
        self._parsed: dict[str, Any] = {}

    def run(self, subs: list[SubRequest]) -> dict[str, dict[str, Any]]:
        for sub in execution_order(subs):
            failed = [p for p in sub.parent_ids if not 200 <= self.results[p]["Status"] < 300]
            if failed:
                message = f"The following ParentIds did not complete successfully: {', '.join(failed)}."
                self.results[sub.key] = {"Status": 409, "Headers": {}, "Content": message}
                continue
            try:
                self.results[sub.key] = self._execute(sub)
            except ApiError as exc:
                self.results[sub.key] = self._entry(exc.response())
        return {s.key: self.results[s.key] for s in subs}

    def _execute(self, sub: SubRequest) -> dict[str, Any]:
        tokens = [self._select(sub, path) for path in sub.parameters]
        if sub.template is None:
            assert sub.resource is not None
            resource = sub.resource
            if resource.startswith("$"):
                resource = self._single(sub, resource, self._select(sub, resource))
            values = [self._single(sub, path, found) for path, found in zip(sub.parameters, tokens)]
            return self._call(sub, resource, values)
        count = max((len(found) for found in tokens), default=1)
        if any(len(found) not in (1, count) for found in tokens):
            sizes = ", ".join(f"'{p}': {len(t)}" for p, t in zip(sub.parameters, tokens))
            raise ApiError(400, f"The Parameters of request '{sub.key}' select different numbers of tokens ({sizes}).")
        items = []
        for i in range(count):
            values = [_token_text(found[i if len(found) > 1 else 0]) for found in tokens]
            items.append(self._call(sub, sub.template, values))
        self.templated.add(sub.key)
        return {"Status": 207, "Headers": {}, "Content": {"Total": count, "Items": items}}

    def _select(self, sub: SubRequest, path: str) -> list[Any]:
        document = {p: self._parsed_result(p) for p in sub.parent_ids}
        found = [match.value for match in compile_path(path).find(document)]
        if not found:
            raise ApiError(400, f"Some JSON paths did not select any tokens: '{path}' in request '{sub.key}'.")
        return found

    @staticmethod
    def _single(sub: SubRequest, path: str, found: list[Any]) -> str:
        if len(found) > 1:
            raise ApiError(
                400,
                f"'{path}' in request '{sub.key}' selected {len(found)} tokens; a Resource takes one "
                "(use a RequestTemplate to make one request per token).",
            )
        return _token_text(found[0])

    def _parsed_result(self, key: str) -> Any:
        """A parent's answer as plain JSON, decoded once; its encoded content is kept for the output."""
        if key not in self._parsed:
            result = self.results[key]
            content = result["Content"]
            if content is not None and not isinstance(content, str):
                encoded = Response(200, content).encode()
                result["Content"] = orjson.Fragment(encoded)
                content = orjson.loads(encoded)
            self._parsed[key] = {**result, "Content": content}
        return self._parsed[key]

    def _call(self, sub: SubRequest, resource: str, values: list[str]) -> dict[str, Any]:
        url = _substitute(resource, values, sub.key) or "/"
        if "://" not in url and not url.startswith("/"):
            url = "/" + url  # relative to /piwebapi
        content = _substitute(sub.content, values, sub.key)
        outer = self.request
        request = Request.from_url(
            sub.method,
            url,
            base_url=outer.base_url,
            headers=dict(sub.headers),
            body=content.encode("utf-8") if content else b"",
            client=outer.client,
            user=outer.user,
        )
        try:
            response = self.sim.handle(request)
        except Exception:  # one broken sub-request must not take the batch down
            log.exception("simulator error in batch sub-request %s %s", request.method, request.path)
            response = Response(500, {"Errors": ["An internal error occurred in the PI Web API simulator."]})
        return self._entry(response)

    @staticmethod
    def _entry(response: Response) -> dict[str, Any]:
        """A sub-response; the body goes in as it is (dict, LazyJson or Fragment), never re-encoded here."""
        body = response.body
        if isinstance(body, bytes | bytearray):
            body = orjson.Fragment(bytes(body)) if body else None
        headers = dict(response.headers)
        if body is not None and not any(k.lower() == "content-type" for k in headers):
            headers.update(JSON_HEADERS)
        return {"Status": response.status, "Headers": headers, "Content": body}


class BatchResponse(Response):
    """The 207 answer, streamed sub-response by sub-response: the sub-requests have run, but their
    large bodies (LazyJson recorded values) are produced while the client reads, so a batch of many
    recorded windows never sits in memory whole. `encode()` gives the same bytes in one piece."""

    def __init__(self, results: dict[str, dict[str, Any]], templated: set[str]):
        super().__init__(207, results)
        self.templated = templated

    def pieces(self) -> Iterator[bytes]:
        return _coalesce(self._pieces())

    def _pieces(self) -> Iterator[bytes]:
        yield b"{"
        entries = list(self.body.items())
        made = 0  # entries before this one have had their recorded windows made
        for i, (key, entry) in enumerate(entries):
            if i == made:
                made = _prefill(entries, i)
            yield (b"," if i else b"") + orjson.dumps(key) + b":"
            yield from _entry_pieces(entry, key in self.templated)
        yield b"}"


def _prefill(entries: list[tuple[str, dict[str, Any]]], start: int) -> int:
    """Make the recorded windows of the answers from `start` on together, up to about `PREFILL_SLOTS`
    slots (one NumPy pass instead of one per sub-request); the index of the first entry left."""
    windows: list[RecordedWindow] = []
    slots = 0
    end = start
    while end < len(entries) and slots < PREFILL_SLOTS:
        content = entries[end][1]["Content"]
        members = content.values() if isinstance(content, dict) else [content]
        for member in members:
            span = member.slot_range() if isinstance(member, RecordedWindow) else None
            if span is not None:
                windows.append(member)
                slots += span[1] - span[0]
        end += 1
    prefill(windows)
    return end


def _entry_pieces(entry: dict[str, Any], templated: bool) -> Iterator[bytes]:
    head = orjson.dumps({"Status": entry["Status"], "Headers": entry["Headers"]})
    yield head[:-1] + b',"Content":'
    content = entry["Content"]
    if templated and not isinstance(content, orjson.Fragment):  # a Fragment when a child's JSONPath read it
        yield b'{"Total":%d,"Items":[' % content["Total"]
        for i, item in enumerate(content["Items"]):
            if i:
                yield b","
            yield from _entry_pieces(item, False)
        yield b"]}"
    elif isinstance(content, LazyJson):
        yield from content.pieces()
    elif content is None:
        yield b"null"
    else:
        yield from Response(200, content).pieces()  # streams a dict's LazyJson member (Items of values)
    yield b"}"


def _coalesce(pieces: Iterator[bytes]) -> Iterator[bytes]:
    """Join small pieces: one ASGI message per comma would cost more than the encoding."""
    buffer: list[bytes] = []
    size = 0
    for piece in pieces:
        if len(piece) >= CHUNK:  # a large piece goes out as it is (no copy into a joined buffer)
            if buffer:
                yield b"".join(buffer)
                buffer, size = [], 0
            yield piece
            continue
        buffer.append(piece)
        size += len(piece)
        if size >= CHUNK:
            yield b"".join(buffer)
            buffer, size = [], 0
    if buffer:
        yield b"".join(buffer)


def execute(sim: Simulator, request: Request) -> Response:
    run = BatchRun(sim, request)
    return BatchResponse(run.run(parse_batch(request.body)), run.templated)


def register(sim: Simulator) -> None:
    @sim.router.route("POST", "/batch")
    def batch(request: Request) -> Response:
        if not sim.config.batch_enabled:  # a server whose batch controller is disabled by configuration
            return method_not_allowed(request.method)
        return execute(sim, request)
