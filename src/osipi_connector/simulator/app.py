"""The ASGI application: transport concerns (auth, CSRF, rate limit, faults) around the router.

Kept free of web frameworks: the router is plain Python so /batch can call it in-process, and the hot
path (recorded values) goes straight from pre-encoded JSON bytes to the socket.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from osipi_connector.compat.uvicorn import close_connection
from osipi_connector.simulator.auth import DISCOVERY_PATH, TOKEN_PATH, Authenticator
from osipi_connector.simulator.core import Simulator
from osipi_connector.simulator.faults import FaultInjector, RateLimiter
from osipi_connector.simulator.http import ApiError, Request, Response

log = logging.getLogger("osipi_connector.simulator")
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# the ASGI callables the server hands the app (ASGI messages are plain dicts)
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


LOGIN_PAGE = (
    b"<!DOCTYPE html>\n<html><head><title>Sign in - Plant Portal</title></head>"
    b'<body><form method="post" action="/login"><input name="user"><input name="password" type="password">'
    b"</form></body></html>"
)


class SimulatorApp:
    def __init__(self, simulator: Simulator):
        self.sim = simulator
        config = simulator.config
        self.auth = Authenticator(config)
        self.limiter = RateLimiter(config.rate_limit_max_requests, config.rate_limit_duration_s)
        self.faults = FaultInjector(config.faults)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        request = self._request(scope, body)
        fault = self.faults.draw()
        if fault.delay_s:
            await asyncio.sleep(fault.delay_s)
        if fault.drop:
            close_connection(send)
            return
        if fault.status:
            response = Response(fault.status, {"Errors": [f"Simulated server error {fault.status}."]})
        elif self.sim.config.login_page:
            response = Response(200, LOGIN_PAGE, {"Content-Type": "text/html; charset=utf-8"})
        else:
            response = self.respond(request)
        await self._send(send, response, truncate=fault.truncate)

    def _request(self, scope: dict[str, Any], body: bytes) -> Request:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        scheme = scope.get("scheme", "http")
        host = headers.get("host") or "{}:{}".format(*scope.get("server") or ("localhost", 80))
        query = scope.get("query_string", b"").decode("latin-1")
        url = scope["path"] + ("?" + query if query else "")
        client = (scope.get("client") or ("127.0.0.1", 0))[0]
        return Request.from_url(
            scope["method"], url, base_url=f"{scheme}://{host}/piwebapi", headers=headers, body=body, client=client
        )

    def respond(self, request: Request) -> Response:
        """One request through every check a real PI Web API applies, in the same order; the answer to
        an authenticated request carries the authenticator's headers (Kerberos' mutual-auth token)."""
        proof: dict[str, str] = {}
        response = self._respond(request, proof)
        if proof:  # a copy: a handler may return a shared or streamed Response (BatchResponse)
            response = copy.copy(response)
            response.headers = {**response.headers, **proof}
        return response

    def _respond(self, request: Request, proof: dict[str, str]) -> Response:
        try:
            wait = self.limiter.retry_after(request.client)
            if wait is not None:
                raise ApiError(429, "Rate limit was reached.", headers={"Retry-After": str(wait)})
            if request.path.lower() == TOKEN_PATH:
                if request.method != "POST":
                    return Response(405, {"error": "invalid_request"})
                return self.auth.token(request)
            if request.path.lower() == DISCOVERY_PATH:
                return self.auth.discovery(request)
            request.user, headers = self.auth.authenticate(request)
            proof.update(headers)
            if request.method in UNSAFE_METHODS and "x-requested-with" not in request.headers:
                raise ApiError(
                    403,
                    "This request was rejected by PI Web API's CSRF defense: add the 'X-Requested-With' "
                    "header (any value) to POST, PUT, PATCH and DELETE requests.",
                )
            return self.sim.handle(request)
        except ApiError as exc:
            return exc.response()
        except Exception:  # never a stack trace on the wire
            log.exception("simulator error on %s %s", request.method, request.path)
            return Response(500, {"Errors": ["An internal error occurred in the PI Web API simulator."]})

    @staticmethod
    async def _send(send: Send, response: Response, truncate: bool = False) -> None:
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items()]
        if response.body is not None and not any(name == b"content-type" for name, _ in headers):
            headers.append((b"content-type", b"application/json; charset=utf-8"))
        pieces = response.pieces() if response.body is not None else iter([b""])
        first = next(pieces)
        if truncate:
            payload = b"".join([first, *pieces])
            headers.append((b"content-length", str(len(payload)).encode()))
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            await send({"type": "http.response.body", "body": payload[: len(payload) // 2], "more_body": True})
            close_connection(send)
            return
        second = next(pieces, None)
        if second is None:  # a body in one piece: send it with its length
            headers.append((b"content-length", str(len(first)).encode()))
            await send({"type": "http.response.start", "status": response.status, "headers": headers})
            await send({"type": "http.response.body", "body": first})
            return
        # streamed (chunked transfer encoding): the client reads while the rest is encoded
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": first, "more_body": True})
        await send({"type": "http.response.body", "body": second, "more_body": True})
        for piece in pieces:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
