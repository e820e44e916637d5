"""Two pure ASGI middlewares: security headers on every answer, and a cap on request bodies.

Why ASGI and not a route dependency: FastAPI reads and parses a JSON body before any dependency (the login
check included) runs, so a limit there comes too late: one unauthenticated 200 MB PUT would be in memory
already. Here a declared Content-Length over the limit is answered 413 before a byte of the body is read,
and a streamed (chunked) body is counted as it arrives and cut off at the limit. Requests without a valid
session get a small limit (a login is tiny); after login, each route gets what its largest honest body
needs (a certificate upload, a source with thousands of nodes).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from starlette.requests import cookie_parser

from iot_connector.web.auth import COOKIE, Sessions

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

ANONYMOUS_BODY_BYTES = 16 * 1024
SESSION_BODY_BYTES = 256 * 1024
ROUTE_BODY_BYTES = {  # larger limits, only with a valid session
    "/api/certs": 1024 * 1024,  # a PEM of up to checks.MAX_PEM_BYTES, JSON-escaped
    "/api/sources": 4 * 1024 * 1024,  # a source listing thousands of nodes or registers
    "/api/sources/test": 4 * 1024 * 1024,
    "/api/sources/browse": 4 * 1024 * 1024,
}
HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


class SecurityHeaders:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _v in message.get("headers", [])}
                extra = [(k.encode(), v.encode()) for k, v in HEADERS.items() if k.encode() not in names]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


class BodyLimit:
    def __init__(self, app: ASGIApp, sessions: Sessions):
        self.app = app
        self.sessions = sessions

    def limit(self, scope: Scope) -> int:
        token = cookie_parser(_header(scope, b"cookie") or "").get(COOKIE)  # parsed as request.cookies is
        if not self.sessions.valid(token):
            return ANONYMOUS_BODY_BYTES
        return ROUTE_BODY_BYTES.get(scope.get("path", "").rstrip("/"), SESSION_BODY_BYTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
            await _refuse(send, limit)
            return
        received = 0
        refused = started = False

        async def counted() -> Message:
            """The app's `receive`: past the limit, answer 413 at once and tell the app the client left."""
            nonlocal received, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    refused = True
                    if not started:  # an app that answered already only sees the client leave
                        await _refuse(send, limit)
                    return {"type": "http.disconnect"}
            return message

        async def unless_refused(message: Message) -> None:
            nonlocal started
            if not refused:  # whatever the app answers to the "disconnect" is dropped
                started = started or message["type"] == "http.response.start"
                await send(message)

        await self.app(scope, counted, unless_refused)


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": [f"request body too large (at most {limit} bytes here)"]}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 413, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
