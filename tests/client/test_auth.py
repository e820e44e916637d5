"""Each auth mode against the simulator (anonymous, basic, bearer via client credentials and static),
and how Kerberos settings reach requests-kerberos. The Kerberos handshake itself runs against a real
KDC in test_kerberos.py (client) and tests/extract/test_kerberos_run.py (`osipi-connector run`)."""

from __future__ import annotations

import logging
import sys
import threading
import time

import pytest
import requests

from osipi_connector.piwebapi.auth import BearerAuth, ThreadLocalAuth, sent_token
from osipi_connector.piwebapi.client import PIWebAPIClient, PIWebAPIError, SubRequest
from osipi_connector.piwebapi.settings import ClientSettings, Credentials
from tests.client.conftest import serving

BASIC = Credentials(username="piuser", password="pipassword")
CLIENT = Credentials(client_id="osipi-connector", client_secret="client-secret")


def whoami(client: PIWebAPIClient) -> dict:
    return client.get_json("system/userinfo")


def test_anonymous():
    with serving() as (_, client):
        assert whoami(client)["IsAuthenticated"] is False


def test_basic_right_password():
    with serving(BASIC, {"auth_type": "basic"}, auth="basic") as (_, client):
        info = whoami(client)
        assert info["IsAuthenticated"] is True
        assert info["Name"].endswith("piuser")
        assert client.batch({"me": SubRequest("system/userinfo")})["me"].content == info


def test_basic_wrong_password_is_a_clear_401_without_the_password():
    wrong = Credentials(username="piuser", password="hunter2-wrong")
    with serving(wrong, {"auth_type": "basic"}, auth="basic") as (_, client), pytest.raises(PIWebAPIError) as caught:
        whoami(client)
    error = caught.value
    assert error.status == 401
    message = str(error)
    assert "credentials" in message
    assert "auth_type" in message
    assert "Basic" in message  # what the server offers
    assert "hunter2" not in message
    assert "hunter2" not in repr(error.__dict__)


def test_anonymous_client_against_a_basic_server_says_what_the_server_offers():
    with serving(auth="basic") as (_, client), pytest.raises(PIWebAPIError, match="the server offers: Basic"):
        whoami(client)


def test_missing_credentials_are_named():
    with pytest.raises(PIWebAPIError, match="user name or password is missing"):
        PIWebAPIClient(ClientSettings(url="http://127.0.0.1:9/piwebapi", auth_type="basic"))
    with pytest.raises(PIWebAPIError, match="neither a token nor client_id"):
        PIWebAPIClient(ClientSettings(url="http://127.0.0.1:9/piwebapi", auth_type="oauth"), Credentials())


def tokens_issued(running) -> int:
    return running.app.auth._issued


def test_bearer_client_credentials_renews_before_expiry():
    # a token lives 2 s and is renewed 0.4 s before; requests over 3.5 s need two renewals, and no 401
    with serving(CLIENT, {"auth_type": "oauth"}, auth="bearer", token_ttl_s=2.0) as (running, client):
        statuses: list[int] = []
        client.session.hooks["response"].append(lambda r, *a, **k: statuses.append(r.status_code))
        deadline = time.monotonic() + 3.5
        calls = 0
        while time.monotonic() < deadline:
            assert whoami(client)["IsAuthenticated"] is True
            calls += 1
            time.sleep(0.05)
        assert 401 not in statuses
        assert 3 <= tokens_issued(running) < calls  # renewed on time, not per request


def test_bearer_renews_once_after_a_401():
    with serving(CLIENT, {"auth_type": "oauth"}, auth="bearer", token_ttl_s=3600) as (running, client):
        statuses: list[int] = []
        client.session.hooks["response"].append(lambda r, *a, **k: statuses.append(r.status_code))
        assert whoami(client)["IsAuthenticated"] is True
        assert tokens_issued(running) == 1
        running.app.auth.expire_all()  # the server forgets every token (revoked, restarted...)
        assert whoami(client)["IsAuthenticated"] is True
        assert tokens_issued(running) == 2
        assert statuses[-3:] == [401, 200, 200]  # rejected, new token, accepted
        # the batch path renews the same way
        running.app.auth.expire_all()
        assert client.batch({"me": SubRequest("system/userinfo")})["me"].status == 200
        assert tokens_issued(running) == 3


def test_bearer_token_endpoint_configured_explicitly():
    with serving(auth="bearer") as (running, _):
        token_url = running.url.rsplit("/piwebapi", 1)[0] + "/identitymanager/connect/token"
        settings = ClientSettings(url=running.url, auth_type="oauth", oauth_token_url=token_url, oauth_scope="piwebapi")
        with PIWebAPIClient(settings, CLIENT) as client:
            urls: list[str] = []
            client.session.hooks["response"].append(lambda r, *a, **k: urls.append(r.url))
            assert whoami(client)["IsAuthenticated"] is True
        assert not any(".well-known" in u for u in urls)  # no discovery when the URL is configured
        assert urls[0] == token_url


def test_bearer_wrong_client_secret_is_clear_and_secret_free():
    wrong = Credentials(client_id="osipi-connector", client_secret="s3cr3t-wrong")
    with serving(wrong, {"auth_type": "oauth"}, auth="bearer") as (_, client), pytest.raises(PIWebAPIError) as caught:
        whoami(client)
    message = str(caught.value)
    assert "invalid_client" in message
    assert "client_id and client_secret" in message
    assert "s3cr3t" not in message


def test_static_bearer_token_and_its_expiry():
    with serving(auth="bearer") as (running, _):
        endpoint = running.url.rsplit("/piwebapi", 1)[0] + "/identitymanager/connect/token"
        form = {"grant_type": "client_credentials", "client_id": "osipi-connector", "client_secret": "client-secret"}
        token = requests.post(endpoint, data=form, timeout=10).json()["access_token"]
        with PIWebAPIClient(ClientSettings(url=running.url, auth_type="oauth"), Credentials(token=token)) as client:
            assert whoami(client)["IsAuthenticated"] is True
            running.app.auth.expire_all()
            with pytest.raises(PIWebAPIError) as caught:  # a static token cannot be renewed
                whoami(client)
        assert caught.value.status == 401
        assert token not in str(caught.value)
        assert tokens_issued(running) == 1


def test_bearer_auth_is_thread_safe():
    with serving(CLIENT, {"auth_type": "oauth", "max_connections": 4}, auth="bearer") as (running, client):
        errors: list[BaseException] = []

        def work() -> None:
            try:
                for _ in range(10):
                    assert whoami(client)["IsAuthenticated"] is True
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert errors == []
        assert tokens_issued(running) == 1  # four threads shared one token
        assert isinstance(client.session.auth, BearerAuth)


# --- kerberos: configuration (the handshake over a real KDC: test_kerberos.py) -----------------------


def kerberos_client(url: str = "http://127.0.0.1:9/piwebapi", **settings) -> PIWebAPIClient:
    return PIWebAPIClient(ClientSettings(url=url, auth_type="kerberos", **settings))


def test_kerberos_options_reach_http_kerberos_auth():
    import requests_kerberos

    with kerberos_client(kerberos_mutual_authentication="required", kerberos_hostname_override="pi.corp.example") as c:
        auth = c.session.auth
        assert isinstance(auth, ThreadLocalAuth)
        kerberos = auth.current()
        assert isinstance(kerberos, requests_kerberos.HTTPKerberosAuth)
        assert kerberos.mutual_authentication == requests_kerberos.REQUIRED
        assert kerberos.hostname_override == "pi.corp.example"
        assert kerberos.sanitize_mutual_error_response is False
        assert auth.current() is kerberos  # one per thread, reused
        other: list = []
        thread = threading.Thread(target=lambda: other.append(auth.current()))
        thread.start()
        thread.join()
        assert other[0] is not kerberos  # another thread gets its own security context
        assert other[0].hostname_override == "pi.corp.example"
    for option, constant in [("optional", "OPTIONAL"), ("disabled", "DISABLED")]:
        with kerberos_client(kerberos_mutual_authentication=option) as c:
            kerberos = c.session.auth.current()
            assert kerberos.mutual_authentication == getattr(requests_kerberos, constant)
            assert kerberos.hostname_override is None


def test_kerberos_against_a_server_that_offers_only_basic():
    with (
        serving(auth="basic") as (running, _),
        kerberos_client(running.url) as client,
        pytest.raises(PIWebAPIError) as caught,
    ):
        whoami(client)
    assert caught.value.status == 401
    assert "the server offers: Basic" in str(caught.value)


def test_kerberos_without_the_extra_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "requests_kerberos", None)  # import fails as when not installed
    with pytest.raises(PIWebAPIError, match=r"osipi-connector\[kerberos\]"):
        kerberos_client()


def test_no_secret_reaches_the_logs(caplog):
    """Everything logged at DEBUG (ours, urllib3's, requests') during bearer and basic sessions,
    including a 401 renewal and a refused password, holds no password, secret or token."""
    caplog.set_level(logging.DEBUG)
    with serving(CLIENT, {"auth_type": "oauth"}, auth="bearer", token_ttl_s=3600) as (running, client):
        tokens: list[str] = []
        client.session.hooks["response"].append(lambda r, *a, **k: tokens.append(sent_token(r.request) or ""))
        whoami(client)
        running.app.auth.expire_all()
        whoami(client)
        assert len(set(tokens) - {""}) == 2
    with serving(BASIC, {"auth_type": "basic"}, auth="basic") as (_, client):
        whoami(client)
    wrong = Credentials(username="piuser", password="hunter2-wrong")
    with serving(wrong, {"auth_type": "basic"}, auth="basic") as (_, client), pytest.raises(PIWebAPIError):
        whoami(client)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "osipi_connector.piwebapi" in {r.name for r in caplog.records}  # our debug lines were captured
    for secret in ["client-secret", "pipassword", "hunter2", *filter(None, tokens)]:
        assert secret not in logged


def test_oauth_against_a_basic_only_server_says_what_the_server_offers():
    with serving(CLIENT, {"auth_type": "oauth"}, auth="basic") as (running, client), pytest.raises(PIWebAPIError) as c:
        whoami(client)
    assert tokens_issued(running) == 2  # a token was obtained, refused, renewed once, refused again
    assert c.value.status == 401
    assert "the server offers: Basic" in str(c.value)
