"""Anonymous, Basic, Bearer (OIDC client credentials) and Kerberos authentication, as PI Web API offers them.

Bearer tokens come from the simulator's own token endpoint (standing in for AVEVA Identity Manager),
expire after `token_ttl_s`, and are opaque random strings derived from the seed and an issue counter.
Kerberos is SPNEGO (`negotiate.py`): the answer to an accepted token carries the server's mutual-auth token.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import logging
import threading
import time
from urllib.parse import parse_qsl

from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.http import ApiError, Request, Response

log = logging.getLogger("osipi_connector.simulator")

TOKEN_PATH = "/identitymanager/connect/token"
DISCOVERY_PATH = "/.well-known/openid-configuration"


class Authenticator:
    def __init__(self, config: SimConfig):
        self.config = config
        self._tokens: dict[str, tuple[str, float]] = {}  # token -> (client_id, expires_at monotonic)
        self._issued = 0
        self._lock = threading.Lock()
        self._negotiate = None
        if config.auth == "kerberos":  # fail at start-up, not on the first request, without a keytab
            from osipi_connector.simulator.negotiate import NegotiateAcceptor

            self._negotiate = NegotiateAcceptor()

    def _challenge(self) -> dict[str, str]:
        if self.config.auth == "basic":
            return {"WWW-Authenticate": 'Basic realm="PI Web API"'}
        if self.config.auth == "kerberos":
            return {"WWW-Authenticate": "Negotiate"}
        return {"WWW-Authenticate": 'Bearer error="invalid_token"'}

    def authenticate(self, request: Request) -> tuple[str | None, dict[str, str]]:
        """The user name for the request (None when anonymous) and headers for its answer (Kerberos'
        mutual-auth token), or raise 401 with a challenge."""
        mode = self.config.auth
        if mode == "none":
            return None, {}
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.partition(" ")
        if mode == "basic" and scheme.lower() == "basic":
            try:
                user, _, password = base64.b64decode(credentials).decode("utf-8").partition(":")
            except (ValueError, UnicodeDecodeError):
                user, password = "", ""
            expected = self.config.users.get(user)
            if expected is not None and hmac.compare_digest(expected, password):
                return user, {}
        if mode == "bearer" and scheme.lower() == "bearer":
            with self._lock:
                entry = self._tokens.get(credentials.strip())
            if entry and entry[1] > time.monotonic():
                return entry[0], {}
        if self._negotiate is not None and scheme.lower() == "negotiate":
            from osipi_connector.simulator.negotiate import NegotiateError

            try:
                user, reply = self._negotiate.accept(credentials.strip())
            except NegotiateError as exc:
                log.warning("Kerberos token refused: %s", exc)
            else:
                return user, {"WWW-Authenticate": f"Negotiate {reply}"} if reply else {}
        raise ApiError(401, "Authorization has been denied for this request.", headers=self._challenge())

    def discovery(self, request: Request) -> Response:
        origin = request.base_url.rsplit("/piwebapi", 1)[0]
        return Response(
            200,
            {
                "issuer": origin + "/identitymanager",
                "token_endpoint": origin + TOKEN_PATH,
                "grant_types_supported": ["client_credentials"],
                "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
                "scopes_supported": ["piwebapi"],
            },
        )

    def token(self, request: Request) -> Response:
        """OAuth 2.0 client-credentials grant; errors use the OAuth error body, not PI's."""
        form = dict(parse_qsl(request.body.decode("utf-8", "replace")))
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        header = request.headers.get("authorization", "")
        if header.lower().startswith("basic "):
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                client_id, _, secret = base64.b64decode(header[6:]).decode("utf-8").partition(":")
        if form.get("grant_type") != "client_credentials":
            return Response(400, {"error": "unsupported_grant_type"})
        expected = self.config.clients.get(client_id)
        if expected is None or not hmac.compare_digest(expected, secret):
            return Response(401, {"error": "invalid_client"})
        with self._lock:
            self._issued += 1
            raw = f"{self.config.seed}:{client_id}:{self._issued}".encode()
            token = hashlib.sha256(raw).hexdigest()
            self._tokens[token] = (client_id, time.monotonic() + self.config.token_ttl_s)
        ttl = int(self.config.token_ttl_s)
        return Response(200, {"access_token": token, "token_type": "Bearer", "expires_in": ttl})

    def expire_all(self) -> None:
        """Expire every issued token now (tests use it to exercise refresh-on-401)."""
        with self._lock:
            self._tokens.clear()
