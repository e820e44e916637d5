"""Transport behaviour over real HTTP: auth, CSRF, rate limiting, injected faults, TLS, error bodies."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from osipi_connector.simulator.config import FaultConfig, SimConfig
from osipi_connector.simulator.server import RunningSimulator, running_simulator
from tests.certs import self_signed

TIMEOUT = 10


def small(**kwargs: Any) -> SimConfig:
    """A small config of its own: the session simulator is shared and must stay unlimited and faultless."""
    return SimConfig(seed=11, tags=10, **kwargs)


def serve(**kwargs: Any) -> Iterator[RunningSimulator]:
    with running_simulator(small(**kwargs)) as running:
        yield running


def origin(url: str) -> str:
    return url.rsplit("/piwebapi", 1)[0]


def assert_errors(response: requests.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["Errors"]
    assert all(isinstance(e, str) for e in body["Errors"])
    assert "Traceback" not in response.text
    return body


# --- anonymous, CSRF, error bodies ---------------------------------------------------------------------


def test_anonymous(simulator):
    info = requests.get(f"{simulator.url}/system/userinfo", timeout=TIMEOUT).json()
    assert info["IsAuthenticated"] is False


def test_csrf_header_required_for_unsafe_methods_only(simulator):
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        body = assert_errors(requests.request(method, f"{simulator.url}/system", timeout=TIMEOUT), 403)
        assert "X-Requested-With" in body["Errors"][0]
    assert requests.get(f"{simulator.url}/system", timeout=TIMEOUT).status_code == 200


def test_unknown_route_and_wrong_method(simulator, http):
    assert_errors(http.get(f"{simulator.url}/no/such/route"), 404)
    assert_errors(http.delete(f"{simulator.url}/system"), 405)
    assert_errors(http.get(f"{origin(simulator.url)}/elsewhere"), 404)


@pytest.fixture(scope="module")
def plain() -> Iterator[RunningSimulator]:
    yield from serve()


def test_internal_errors_never_leak_a_stack_trace(plain):
    def broken(request):
        raise RuntimeError("secret detail")

    plain.sim.router.add("GET", "/test/broken", broken)
    response = requests.get(f"{plain.url}/test/broken", timeout=TIMEOUT)
    body = assert_errors(response, 500)
    assert "secret detail" not in response.text
    batch = requests.post(
        f"{plain.url}/batch",
        json={"b": {"Resource": "/test/broken"}, "ok": {"Resource": "/system"}},
        headers={"X-Requested-With": "x"},
        timeout=TIMEOUT,
    ).json()
    assert batch["b"]["Status"] == 500
    assert batch["b"]["Content"] == body
    assert batch["ok"]["Status"] == 200


# --- basic ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def basic() -> Iterator[RunningSimulator]:
    yield from serve(auth="basic")


def test_basic_right_password(basic):
    response = requests.get(f"{basic.url}/system/userinfo", auth=("piuser", "pipassword"), timeout=TIMEOUT)
    assert response.status_code == 200
    assert response.json()["Name"] == "piuser"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic " + "cGl1c2VyOndyb25n"},
        {"Authorization": "Basic !!!"},
        {"Authorization": "Bearer x"},
    ],
    ids=["missing", "wrong-password", "garbage", "other-scheme"],
)
def test_basic_rejections_challenge(basic, headers):
    response = requests.get(f"{basic.url}/system", headers=headers, timeout=TIMEOUT)
    assert_errors(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Basic")


# --- bearer --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bearer() -> Iterator[RunningSimulator]:
    yield from serve(auth="bearer", token_ttl_s=0.5)


def get_token(running: RunningSimulator, secret: str = "client-secret") -> requests.Response:
    discovery = requests.get(f"{running.url}/.well-known/openid-configuration", timeout=TIMEOUT)
    assert discovery.status_code == 200
    endpoint = discovery.json()["token_endpoint"]
    assert endpoint == f"{origin(running.url)}/identitymanager/connect/token"
    form = {"grant_type": "client_credentials", "client_id": "osipi-connector", "client_secret": secret}
    return requests.post(endpoint, data=form, timeout=TIMEOUT)


def system_status(running: RunningSimulator, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    return requests.get(f"{running.url}/system", headers=headers, timeout=TIMEOUT).status_code


def test_bearer_discovery_token_use_and_expiry(bearer):
    token = get_token(bearer).json()
    assert token["token_type"] == "Bearer"
    assert system_status(bearer, token["access_token"]) == 200
    time.sleep(0.6)  # past token_ttl_s
    response = requests.get(
        f"{bearer.url}/system", headers={"Authorization": f"Bearer {token['access_token']}"}, timeout=TIMEOUT
    )
    assert_errors(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    fresh = get_token(bearer).json()["access_token"]
    assert fresh != token["access_token"]
    assert system_status(bearer, fresh) == 200


def test_bearer_client_secret_in_basic_header(bearer):
    endpoint = f"{origin(bearer.url)}/identitymanager/connect/token"
    response = requests.post(
        endpoint, data={"grant_type": "client_credentials"}, auth=("osipi-connector", "client-secret"), timeout=TIMEOUT
    )
    assert response.status_code == 200
    assert system_status(bearer, response.json()["access_token"]) == 200


def test_bearer_rejections(bearer):
    wrong = get_token(bearer, secret="wrong")
    assert wrong.status_code == 401
    assert wrong.json() == {"error": "invalid_client"}
    endpoint = f"{origin(bearer.url)}/identitymanager/connect/token"
    grant = requests.post(endpoint, data={"grant_type": "password"}, timeout=TIMEOUT)
    assert grant.status_code == 400
    assert grant.json() == {"error": "unsupported_grant_type"}
    assert requests.get(endpoint, timeout=TIMEOUT).status_code == 405
    assert system_status(bearer, "not-a-token") == 401
    response = requests.get(f"{bearer.url}/system", auth=("piuser", "pipassword"), timeout=TIMEOUT)
    assert_errors(response, 401)


# --- rate limiting -------------------------------------------------------------------------------------

WINDOW_S = 0.5


@pytest.fixture
def limited() -> Iterator[RunningSimulator]:
    yield from serve(rate_limit_max_requests=5, rate_limit_duration_s=WINDOW_S)


def test_rate_limit_429_then_recovers(limited):
    url = f"{limited.url}/system"
    with requests.Session() as session:
        started = time.monotonic()
        assert [session.get(url, timeout=TIMEOUT).status_code for _ in range(5)] == [200] * 5
        refused = session.get(url, timeout=TIMEOUT)
        assert time.monotonic() - started < WINDOW_S, "the machine was too slow to hit the limit in one window"
        body = assert_errors(refused, 429)
        assert "Rate limit" in body["Errors"][0]
        assert int(refused.headers["Retry-After"]) >= 1
        time.sleep(WINDOW_S + 0.1)
        assert session.get(url, timeout=TIMEOUT).status_code == 200


# --- faults --------------------------------------------------------------------------------------------


def faulty(seed: int = 4, **fault_kwargs: float) -> contextlib.AbstractContextManager[RunningSimulator]:
    return running_simulator(small(faults=FaultConfig(seed=seed, **fault_kwargs)))


def test_error_burst_then_normal():
    with faulty(error_rate=1.0, error_burst=3) as running:
        responses = [requests.get(f"{running.url}/system", timeout=TIMEOUT) for _ in range(8)]
    statuses = [r.status_code for r in responses]
    assert statuses[3] == statuses[7] == 200, statuses
    for burst in (responses[:3], responses[4:7]):
        assert len({r.status_code for r in burst}) == 1, statuses
        assert burst[0].status_code in (500, 502, 503)
        assert_errors(burst[0], burst[0].status_code)


def test_dropped_connection():
    with faulty(drop_rate=1.0) as running, pytest.raises(requests.ConnectionError):
        requests.get(f"{running.url}/system", timeout=TIMEOUT)


def test_truncated_body():
    broken = (requests.exceptions.ChunkedEncodingError, requests.ConnectionError)
    with faulty(truncate_rate=1.0) as running, pytest.raises(broken):
        requests.get(f"{running.url}/dataservers", timeout=TIMEOUT)


def test_latency_is_added():
    with faulty(latency_ms=150) as running:
        started = time.monotonic()
        assert requests.get(f"{running.url}/system", timeout=TIMEOUT).status_code == 200
        assert time.monotonic() - started >= 0.15


def fault_trace(seed: int, n: int = 24) -> list[str]:
    """What a client sees for `n` requests: a status, or the kind of transport failure."""
    trace = []
    with faulty(seed, error_rate=0.2, error_burst=2, drop_rate=0.15, truncate_rate=0.15) as running:
        for _ in range(n):
            try:
                trace.append(str(requests.get(f"{running.url}/system", timeout=TIMEOUT).status_code))
            except requests.exceptions.ChunkedEncodingError:
                trace.append("truncated")
            except requests.ConnectionError:
                trace.append("dropped")
    return trace


def test_same_fault_seed_replays_the_same_faults():
    first = fault_trace(seed=21)
    assert first == fault_trace(seed=21)
    assert {"200", "dropped", "truncated"} <= set(first), first
    assert any(s.startswith("5") for s in first), first


# --- TLS -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[str, str]:
    """A throwaway self-signed certificate for 127.0.0.1."""
    issued = self_signed(tmp_path_factory.mktemp("tls"), "127.0.0.1", hosts=(), stem="cert")
    return str(issued.cert), str(issued.key)


def test_tls_with_a_ca_bundle(certificate):
    cert, key = certificate
    with running_simulator(small(), tls_cert=cert, tls_key=key) as running:
        assert running.url.startswith("https://")
        with requests.Session() as session:  # closed before the server stops: a TLS close waits for the peer
            system = session.get(f"{running.url}/system", verify=cert, timeout=TIMEOUT).json()
        assert system["Links"]["Self"] == f"{running.url}/system"
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(f"{running.url}/system", timeout=TIMEOUT)  # not trusted by the default CA store
