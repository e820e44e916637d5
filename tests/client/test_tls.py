"""TLS with a self-signed certificate: verify_ssl=False works, ca_bundle=<cert> works, and the default
verification fails with a message that says what to configure."""

from __future__ import annotations

import pytest

from osipi_connector.piwebapi.client import PIWebAPIClient, PIWebAPIError
from osipi_connector.piwebapi.settings import ClientSettings
from osipi_connector.simulator.server import running_simulator
from tests.client.conftest import FAST_RETRY, sim_config
from tests.simulator.test_transport import certificate  # noqa: F401  (the throwaway self-signed certificate fixture)


@pytest.fixture(scope="module")
def tls_simulator(certificate):  # noqa: F811  (the fixture imported above)
    cert, key = certificate
    with running_simulator(sim_config(), tls_cert=cert, tls_key=key) as running:
        yield running, cert


def system(url: str, **settings) -> dict:
    # the client is closed before the server stops: a TLS close waits for the peer
    with PIWebAPIClient(ClientSettings(url=url, auth_type="anonymous", retry=FAST_RETRY, **settings)) as client:
        return client.get_json("system")


def test_ca_bundle_trusts_the_self_signed_certificate(tls_simulator):
    running, cert = tls_simulator
    assert running.url.startswith("https://")
    assert system(running.url, ca_bundle=cert)["Links"]["Self"] == f"{running.url}/system"


def test_verify_ssl_false_accepts_it(tls_simulator):
    running, _ = tls_simulator
    with pytest.warns(Warning, match="Unverified HTTPS"):  # urllib3 says so on every request, as it should
        assert system(running.url, verify_ssl=False)["Links"]["Self"] == f"{running.url}/system"


def test_default_verification_fails_with_a_clear_message(tls_simulator, monkeypatch):
    running, _ = tls_simulator
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    with pytest.raises(PIWebAPIError) as caught:
        system(running.url)
    message = str(caught.value)
    assert caught.value.status == 0
    assert "TLS certificate verification failed" in message
    assert "self-signed" in message  # the reason the TLS library gave, kept
    assert "pi_web_api.ca_bundle" in message
