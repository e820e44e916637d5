"""The client's Kerberos (SPNEGO) handshake against `simulate --auth kerberos` over a real KDC.

The simulator runs as a child process with the service keytab; the client runs here, with KRB5_CONFIG
and KRB5CCNAME set by monkeypatch for the test only (the Kerberos library reads them per handshake).
"""

from __future__ import annotations

import base64
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from osipi_connector.piwebapi.client import PIWebAPIClient, PIWebAPIError, SubRequest
from osipi_connector.piwebapi.settings import ClientSettings
from tests.client.conftest import FAST_RETRY, serving
from tests.kerberos import USER, Realm, kdc, kerberos_simulator  # noqa: F401 (kdc is a fixture)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def url(kdc: Realm) -> Iterator[str]:  # noqa: F811
    with kerberos_simulator(kdc, "--tags", "20", "--rate-limit", "0") as running:
        yield running


@pytest.fixture
def ticket(kdc: Realm, tmp_path, monkeypatch) -> None:  # noqa: F811
    """piuser's ticket in a cache of this test, and the realm's krb5.conf, for this process (until teardown)."""
    env = kdc.client_env(kdc.kinit(tmp_path / "ccache"))
    for name in ("KRB5_CONFIG", "KRB5CCNAME"):
        monkeypatch.setenv(name, env[name])


def kerberos_client(url: str, **settings) -> PIWebAPIClient:
    settings.setdefault("kerberos_hostname_override", "localhost")
    return PIWebAPIClient(ClientSettings(url=url, auth_type="kerberos", retry=FAST_RETRY, **settings))


def test_handshake_with_mutual_authentication(url, ticket):
    with kerberos_client(url, kerberos_mutual_authentication="required") as client:
        answers: list[requests.Response] = []
        client.session.hooks["response"].append(lambda r, *a, **k: answers.append(r))
        info = client.get_json("system/userinfo")
        assert info["IsAuthenticated"] is True
        assert info["Name"] == USER  # the principal from the ticket, as the server saw it
        challenge, accepted = answers[-1].history[-1], answers[-1]
        assert (challenge.status_code, challenge.headers["WWW-Authenticate"]) == (401, "Negotiate")
        scheme, _, token = accepted.headers["WWW-Authenticate"].partition(" ")
        assert scheme == "Negotiate"
        assert base64.b64decode(token)  # the server's AP-REP, which the client verified
        assert client.session.auth.current().auth_done is True
        # a POST is sent again with its body after the 401
        assert client.batch({"me": SubRequest("system/userinfo")})["me"].content["Name"] == USER


def test_concurrent_handshakes_in_worker_threads(url, ticket):
    """Worker threads authenticate at the same moment, each with its own context (ThreadLocalAuth)."""
    with kerberos_client(url, max_connections=4) as client, ThreadPoolExecutor(4) as pool:
        names = list(pool.map(lambda _: client.get_json("system/userinfo")["Name"], range(12)))
    assert names == [USER] * 12  # a failed handshake in any thread would raise here


def test_the_server_refuses_a_token_it_cannot_accept(url):
    bogus = base64.b64encode(b"not a kerberos token").decode()
    answer = requests.get(f"{url}/system/userinfo", headers={"Authorization": f"Negotiate {bogus}"}, timeout=10)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == "Negotiate"
    assert answer.json() == {"Errors": ["Authorization has been denied for this request."]}


def test_required_mutual_authentication_refuses_an_unsigned_answer():
    """A server (or a proxy) that answers without proving it is the SPN: refused when required, and
    accepted when optional (no KDC needed: the answer never asks for a ticket)."""
    with serving() as (running, _):
        required = kerberos_client(running.url, kerberos_mutual_authentication="required")
        with required as client, pytest.raises(PIWebAPIError) as caught:
            client.get_json("system/userinfo")
        message = str(caught.value)
        assert "Kerberos mutual authentication failed" in message
        assert "HTTP/localhost" in message
        assert "kerberos_mutual_authentication" in message
        with kerberos_client(running.url, kerberos_mutual_authentication="optional") as client:
            assert client.get_json("system/userinfo")["IsAuthenticated"] is False


def test_simulate_without_a_service_key_says_to_set_krb5_ktname(kdc, tmp_path):  # noqa: F811
    env = {**kdc.server_env(), "KRB5_KTNAME": f"FILE:{tmp_path / 'missing.keytab'}"}
    command = [sys.executable, "-m", "osipi_connector.cli", "simulate", "--port", "0", "--auth", "kerberos"]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "KRB5_KTNAME" in result.stderr
    assert "missing.keytab" in result.stderr  # the library's reason names the keytab it looked at
