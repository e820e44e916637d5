"""Framework-free request/response types, routing, and PI's parameter and error conventions.

Handlers take a `Request` and return a `Response` (or a JSON-able object for 200). The batch controller
calls the same router in-process, so a sub-request behaves exactly like a direct call.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import orjson


class ApiError(Exception):
    """An error PI Web API answers with a status and an `{"Errors": [...]}` body."""

    def __init__(self, status: int, *errors: str, headers: dict[str, str] | None = None):
        super().__init__(errors[0] if errors else str(status))
        self.status = status
        self.errors = list(errors)
        self.headers = headers or {}

    def response(self) -> Response:
        return Response(self.status, {"Errors": self.errors}, dict(self.headers))


@dataclass
class Request:
    method: str
    path: str  # below /piwebapi, e.g. "/streams/F1DP.../recorded"
    query: list[tuple[str, str]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""
    client: str = "127.0.0.1"
    base_url: str = "http://localhost/piwebapi"
    user: str | None = None

    @classmethod
    def from_url(cls, method: str, url: str, base_url: str, **kwargs: Any) -> Request:
        """Build a request from an absolute or relative URL; host and port are ignored, as in /batch."""
        parts = urlsplit(url)
        path = parts.path
        index = path.lower().find("/piwebapi")
        path = path[index + len("/piwebapi") :] if index >= 0 else path
        query = parse_qsl(parts.query, keep_blank_values=True)
        return cls(method=method.upper(), path=path or "/", query=query, base_url=base_url, **kwargs)

    def args(self, name: str) -> list[str]:
        """All values of a parameter; PI parameter names are case-insensitive."""
        lname = name.lower()
        return [v for k, v in self.query if k.lower() == lname]

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.args(name)
        return values[0] if values else default

    def int_arg(self, name: str, default: int, minimum: int | None = 0) -> int:
        raw = self.arg(name)
        if raw is None or raw == "":
            return default
        try:
            value = int(raw)
        except ValueError:
            raise ApiError(400, f"The value '{raw}' is not valid for {name}.") from None
        if minimum is not None and value < minimum:
            raise ApiError(400, f"The value '{raw}' is not valid for {name}: it must be at least {minimum}.")
        return value

    def bool_arg(self, name: str, default: bool) -> bool:
        raw = self.arg(name)
        if raw is None or raw == "":
            return default
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ApiError(400, f"The value '{raw}' is not valid for {name}.")

    def enum_arg(self, name: str, default: str, allowed: tuple[str, ...]) -> str:
        raw = self.arg(name)
        if raw is None or raw == "":
            return default
        for option in allowed:
            if option.lower() == raw.lower():
                return option
        raise ApiError(400, f"The value '{raw}' is not valid for {name}. Valid values: {', '.join(allowed)}.")

    def link(self, path: str) -> str:
        return self.base_url + path


@dataclass
class Response:
    status: int = 200
    body: Any = None  # a JSON-able object (may hold orjson.Fragment / LazyJson values), or raw bytes
    headers: dict[str, str] = field(default_factory=dict)

    def encode(self) -> bytes:
        if self.body is None:
            return b""
        if isinstance(self.body, bytes | bytearray):
            return bytes(self.body)
        return orjson.dumps(self.body, default=_materialize)

    def pieces(self) -> Iterator[bytes]:
        """The encoded body in pieces: a top-level LazyJson member is streamed while it is produced."""
        lazy = [k for k, v in self.body.items() if isinstance(v, LazyJson)] if isinstance(self.body, dict) else []
        if len(lazy) != 1:
            yield self.encode()
            return
        key = lazy[0]
        envelope = orjson.dumps({**self.body, key: _MARKER}, default=_materialize)
        head, _, tail = envelope.partition(_MARKER_BYTES)
        yield head
        yield from self.body[key].pieces()
        yield tail


class LazyJson:
    """A JSON value produced in pieces, so a large answer goes out while the rest is still encoded.

    `pieces()` yields chunks of already-encoded JSON that concatenate to one value; anything that needs
    the whole value (batch, selectedFields on a nested level) gets it as an orjson.Fragment.
    """

    def __init__(self, pieces: Callable[[], Iterator[bytes]]):
        self.pieces = pieces

    def fragment(self) -> orjson.Fragment:
        return orjson.Fragment(b"".join(self.pieces()))


_MARKER_BYTES = rb'"\u0000lazy\u0000"'
_MARKER = orjson.Fragment(_MARKER_BYTES)


def _materialize(value: Any) -> Any:
    if isinstance(value, LazyJson):
        return value.fragment()
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


Handler = Callable[..., Any]


class Router:
    """Regex routes matched case-insensitively on the path below /piwebapi, as IIS does. A literal
    segment beats a parameter (`/elements/search` before `/elements/{webId}`), whatever the order the
    routes were added in. Routes are kept per first path segment (the controller), so a request is
    matched against its controller's routes only."""

    def __init__(self) -> None:
        # first segment -> routes, fewest parameters first (insertion order within a count)
        self._routes: dict[str, list[tuple[int, str, re.Pattern[str], Handler]]] = {}

    def add(self, method: str, pattern: str, handler: Handler) -> None:
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern.rstrip("/"))
        params = pattern.count("{")
        routes = self._routes.setdefault(_first_segment(pattern), [])
        at = bisect.bisect_right([r[0] for r in routes], params)
        routes.insert(at, (params, method.upper(), re.compile(f"^{regex}/?$", re.IGNORECASE), handler))

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        def decorator(handler: Handler) -> Handler:
            self.add(method, pattern, handler)
            return handler

        return decorator

    def dispatch(self, request: Request) -> Response:
        path_matched = False
        for _, method, regex, handler in self._routes.get(_first_segment(request.path), ()):
            match = regex.match(request.path)
            if not match:
                continue
            path_matched = True
            if method != request.method:
                continue
            word = next((v for k, v in match.groupdict().items() if k == "web_id" and _WORD.fullmatch(v)), None)
            if word is not None:  # `/elements/foo`: an unknown action, not a malformed WebID
                return not_found(request)
            try:
                result = handler(request, **match.groupdict())
            except ApiError as exc:
                return exc.response()
            return result if isinstance(result, Response) else Response(200, result)
        if path_matched:
            return method_not_allowed(request.method)
        return not_found(request)


def _first_segment(path: str) -> str:
    return path.lstrip("/").split("/", 1)[0].lower()


_WORD = re.compile(r"[a-z]+")  # a lower-case word where a WebID belongs: a route segment PI does not have


def not_found(request: Request) -> Response:
    return Response(404, {"Errors": [f"The requested resource '{request.path}' was not found."]})


def method_not_allowed(method: str) -> Response:
    """ASP.NET Web API's 405, as PI Web API answers for a method a route (or a disabled controller) lacks."""
    return Response(405, {"Errors": [f"The requested resource does not support http method '{method}'."]})


def paginate(request: Request, items: list[Any], total: int | None = None) -> tuple[list[Any], dict[str, str]]:
    """startIndex/maxCount paging (defaults 0/1000) with PI's First/Previous/Next/Last links."""
    start = request.int_arg("startIndex", 0)
    count = request.int_arg("maxCount", 1000, minimum=1)
    page = items[start : start + count]
    total = len(items) if total is None else total
    links: dict[str, str] = {}
    base = request.base_url + request.path
    others = [(k, v) for k, v in request.query if k.lower() not in ("startindex", "maxcount")]

    def url(index: int) -> str:
        query = "&".join(f"{k}={v}" for k, v in [*others, ("startIndex", str(index)), ("maxCount", str(count))])
        return f"{base}?{query}"

    links["First"] = url(0)
    if start > 0:
        links["Previous"] = url(max(0, start - count))
    if start + count < total:
        links["Next"] = url(start + count)
    links["Last"] = url(max(0, (total - 1) // count * count))
    return page, links


def select_fields(body: Any, spec: str | None) -> Any:
    """Apply `selectedFields` (`Items.Timestamp;Items.Value`) to a response body.

    A field path keeps that member and everything below it; lists are filtered element-wise. Members
    not named are dropped, as the real server does.
    """
    if not spec:
        return body
    return _select(body, _field_paths(spec))


@functools.lru_cache(maxsize=256)
def _field_paths(spec: str) -> list[tuple[str, ...]]:
    """`selectedFields` as lower-case member paths (cached: clients send the same few specs; not mutated)."""
    return [tuple(part.lower() for part in p.split(".")) for p in spec.split(";") if p.strip()]


def _select(node: Any, paths: list[tuple[str, ...]]) -> Any:
    if any(len(p) == 0 for p in paths) or isinstance(node, orjson.Fragment | LazyJson):
        return node  # pre-encoded values were encoded with the selection already applied
    if isinstance(node, list):
        return [_select(item, paths) for item in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        sub = [p[1:] for p in paths if p[0] == key.lower()]
        if sub:
            out[key] = _select(value, sub)
    return out
