"""The four ways PI Web API authenticates a client, as requests auth objects.

* anonymous: nothing.
* basic: user name and password (requests' HTTPBasicAuth).
* kerberos: requests-kerberos (the `[kerberos]` extra, imported only when chosen); one auth object per
  thread, because HTTPKerberosAuth keeps a per-host security context that concurrent handshakes would share.
* oauth: a bearer token, static or from an OIDC client-credentials grant. The token endpoint comes from
  `{base}/.well-known/openid-configuration` unless configured; the token is renewed shortly before it
  expires and once more when the server answers 401 (it may have been revoked or the clocks differ).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import requests
from pydantic import SecretStr
from requests.auth import AuthBase, HTTPBasicAuth

from osipi_connector.piwebapi.errors import PIWebAPIError, http_error, safe_url
from osipi_connector.piwebapi.settings import ClientSettings, Credentials

log = logging.getLogger("osipi_connector.piwebapi")

DISCOVERY = "/.well-known/openid-configuration"
_RENEW_SHARE = 0.2  # renew a token when less than this share of its lifetime is left ...
_RENEW_MAX_S = 60.0  # ... or less than this many seconds


class NoAuth(AuthBase):
    """Explicitly no auth (a session's default auth would apply to `auth=None`)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class ThreadLocalAuth(AuthBase):
    """One auth object per thread, built by `factory` on first use in that thread."""

    def __init__(self, factory: Callable[[], AuthBase]):
        self.factory = factory
        self._local = threading.local()

    def current(self) -> AuthBase:
        auth = getattr(self._local, "auth", None)
        if auth is None:
            auth = self._local.auth = self.factory()
        return auth

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return self.current()(request)


class BearerAuth(AuthBase):
    """`Authorization: Bearer <token>`; `fetch` (None for a static token) returns (token, lifetime seconds)."""

    def __init__(self, token: str | None, fetch: Callable[[], tuple[str, float | None]] | None = None):
        self._token = token
        self._renew_at = float("inf")
        self._fetch = fetch
        self._lock = threading.Lock()

    @property
    def refreshable(self) -> bool:
        return self._fetch is not None

    def token(self) -> str:
        with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                self._renew()
            assert self._token is not None
            return self._token

    def invalidate(self, rejected: str | None) -> bool:
        """After a 401: drop the token the server rejected (unless another thread already replaced it).
        False when there is nothing to renew (a static token)."""
        if self._fetch is None:
            return False
        with self._lock:
            if rejected is None or self._token == rejected:
                self._token = None
        return True

    def _renew(self) -> None:
        assert self._fetch is not None, "a static token is set at construction"
        token, lifetime = self._fetch()
        self._token = token
        if lifetime is None:
            self._renew_at = float("inf")
        else:
            self._renew_at = time.monotonic() + lifetime - min(_RENEW_MAX_S, lifetime * _RENEW_SHARE)
        log.debug("obtained a bearer token valid for %s s", lifetime)

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        return request


def sent_token(request: requests.PreparedRequest | None) -> str | None:
    """The bearer token a request carried (to invalidate exactly that one after a 401)."""
    header = (request.headers.get("Authorization", "") if request is not None else "") or ""
    return header[7:] if header.startswith("Bearer ") else None


class ClientCredentials:
    """The OIDC client-credentials grant against the configured or discovered token endpoint."""

    def __init__(self, settings: ClientSettings, client_id: str, secret: SecretStr, session: requests.Session):
        self.settings = settings
        self.client_id = client_id
        self._secret = secret
        self.session = session
        self._token_url = settings.oauth_token_url

    def _timeout(self) -> tuple[float, float]:
        return (self.settings.connect_timeout, self.settings.read_timeout)

    def token_url(self) -> str:
        if self._token_url is None:
            url = self.settings.url + DISCOVERY
            response = self._call("GET", url, what="discovery")
            endpoint = _json(response).get("token_endpoint")
            if not isinstance(endpoint, str) or not endpoint:
                raise PIWebAPIError(
                    f"The OpenID configuration at {safe_url(url)} has no token_endpoint; set "
                    "pi_web_api.oauth_token_url to the identity provider's token URL.",
                    url=safe_url(url),
                )
            self._token_url = endpoint
        return self._token_url

    def __call__(self) -> tuple[str, float | None]:
        form = {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self._secret.get_secret_value(),
        }
        if self.settings.oauth_scope:
            form["scope"] = self.settings.oauth_scope
        url = self.token_url()
        body = _json(self._call("POST", url, what="token", data=form))
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise PIWebAPIError(f"The token endpoint {safe_url(url)} answered without an access_token.")
        lifetime = body.get("expires_in")
        return token, float(lifetime) if isinstance(lifetime, (int, float)) else None

    def _call(self, method: str, url: str, what: str, **kwargs: Any) -> requests.Response:
        try:
            response = self.session.request(
                method, url, auth=NoAuth(), timeout=self._timeout(), verify=self.session.verify, **kwargs
            )
        except requests.RequestException as exc:
            raise PIWebAPIError(
                f"{method} {safe_url(url)} (OIDC {what}) failed: {type(exc).__name__}. Check "
                "pi_web_api.oauth_token_url and that the identity provider is reachable.",
                url=safe_url(url),
            ) from None
        if response.status_code >= 400:
            error = http_error(method, url, response.status_code, response.content, 1)
            if what == "discovery":
                hint = (
                    "the server publishes no OpenID configuration (is Bearer authentication enabled?); set "
                    "pi_web_api.oauth_token_url to the identity provider's token URL"
                )
            elif response.status_code in (400, 401, 403):
                hint = "check the client_id and client_secret and that the client may use the client-credentials grant"
            else:
                hint = "check pi_web_api.oauth_token_url"
            raise PIWebAPIError(
                f"The OIDC {what} request was refused ({response.status_code} from {safe_url(url)}: "
                f"{'; '.join(error.errors) or 'no message'}); {hint}.",
                status=response.status_code,
                errors=error.errors,
                url=safe_url(url),
            )
        return response


def _json(response: requests.Response) -> dict[str, Any]:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise PIWebAPIError(f"{safe_url(response.url)} did not answer a JSON object.", status=response.status_code)
    return data


# What to install for Kerberos, said the same way by the client and the simulator: `make demo` and the base
# package need no compiler, so requests-kerberos is the [kerberos] extra, and its gssapi builds from source.
KERBEROS_INSTALL = (
    "on Debian/Ubuntu first `sudo apt-get install libkrb5-dev` (gssapi builds from source against it; "
    "RHEL: krb5-devel), then `pip install 'osipi-connector[kerberos]'`"
)


def kerberos_auth(settings: ClientSettings) -> AuthBase:
    """HTTPKerberosAuth with the configured mutual authentication and hostname override (per thread)."""
    try:
        import requests_kerberos
    except ImportError:
        raise PIWebAPIError(
            f"pi_web_api.auth_type is kerberos but requests-kerberos is not installed: {KERBEROS_INSTALL}."
        ) from None
    except OSError as exc:  # installed, but the system's Kerberos libraries cannot be loaded
        raise PIWebAPIError(
            f"pi_web_api.auth_type is kerberos but requests-kerberos cannot load the system's Kerberos "
            f"libraries ({exc}): {KERBEROS_INSTALL}."
        ) from None
    from osipi_connector.piwebapi.kerberos import ExplainedKerberosAuth

    mutual = {
        "required": requests_kerberos.REQUIRED,
        "optional": requests_kerberos.OPTIONAL,
        "disabled": requests_kerberos.DISABLED,
    }[settings.kerberos_mutual_authentication]

    def build() -> AuthBase:
        return ExplainedKerberosAuth(
            mutual_authentication=mutual,
            hostname_override=settings.kerberos_hostname_override,
            # PI Web API's error bodies are useful; the AVEVA sample keeps them too
            sanitize_mutual_error_response=False,
        )

    return ThreadLocalAuth(build)


def build_auth(settings: ClientSettings, credentials: Credentials | None, session: requests.Session) -> AuthBase:
    """The auth object for `settings.auth_type`, or a PIWebAPIError naming the missing credential."""
    creds = credentials or Credentials()
    kind = settings.auth_type
    if kind == "anonymous":
        return NoAuth()
    if kind == "basic":
        if not creds.username or creds.password is None:
            raise PIWebAPIError(
                "pi_web_api.auth_type is basic but the user name or password is missing: set username_key and "
                "password_key (secrets) or the matching environment variables."
            )
        return HTTPBasicAuth(creds.username, creds.password.get_secret_value())
    if kind == "kerberos":
        return kerberos_auth(settings)
    if creds.token is not None:
        return BearerAuth(creds.token.get_secret_value())
    if creds.client_id and creds.client_secret is not None:
        return BearerAuth(None, ClientCredentials(settings, creds.client_id, creds.client_secret, session))
    raise PIWebAPIError(
        "pi_web_api.auth_type is oauth but neither a token nor client_id and client_secret were given: set "
        "oauth_token_key (a static token) or the client credentials keys."
    )
