"""get_json, get_bytes, iter_items and the errors a user sees, against the simulator over HTTP."""

from __future__ import annotations

import re
import socket

import orjson
import pytest
import requests

from osipi_connector.piwebapi.client import PIWebAPIClient, PIWebAPIError, SubRequest
from osipi_connector.piwebapi.errors import http_error, safe_url
from osipi_connector.piwebapi.settings import ClientSettings
from tests.client.conftest import FAST_RETRY, RECORDED, first_points, make_client


@pytest.fixture(scope="module")
def client(simulator) -> PIWebAPIClient:
    with make_client(simulator) as client:
        yield client


def test_base_url_has_no_trailing_slash(simulator):
    settings = ClientSettings(url=simulator.url + "/", auth_type="anonymous")
    assert settings.url == simulator.url
    with PIWebAPIClient(settings) as client:
        assert client.base_url == simulator.url
        assert client.url("/points") == client.url("points") == f"{simulator.url}/points"


def test_get_json_equals_what_the_server_serves(client, simulator):
    direct = requests.get(f"{simulator.url}/dataservers", timeout=10).json()
    assert client.get_json("dataservers") == direct
    assert client.get_json(f"{simulator.url}/dataservers") == direct  # absolute links are followed as they are


def test_get_bytes_is_the_raw_body_and_params_are_encoded(client, simulator):
    webid = first_points(client, 1)[0]["WebId"]
    params = {**RECORDED, "selectedFields": "Items.Timestamp;Items.Value"}
    raw = client.get_bytes(f"streams/{webid}/recorded", params)
    direct = requests.get(f"{simulator.url}/streams/{webid}/recorded", params=params, timeout=10)
    assert raw == direct.content
    items = orjson.loads(raw)["Items"]
    assert items
    assert set(items[0]) == {"Timestamp", "Value"}  # selectedFields reached the server with its ';'


def test_iter_items_pages_until_a_short_page(client, simulator):
    points_link = client.get_json("dataservers")["Items"][0]["Links"]["Points"]
    every = requests.get(points_link, params={"maxCount": 100000}, timeout=10).json()["Items"]
    assert len(every) == 510  # 500 generated points and PI's 10 default points
    seen: list[dict] = []
    hook_urls: list[str] = []
    client.session.hooks["response"].append(lambda r, *a, **k: hook_urls.append(r.url))
    try:
        seen = list(client.iter_items(points_link, page_size=120))
    finally:
        client.session.hooks["response"].clear()
    assert [p["WebId"] for p in seen] == [p["WebId"] for p in every]  # all, in order, no duplicates
    assert len(hook_urls) == 5  # 120 * 4 + 30: the short fifth page ends the loop
    assert "startIndex=480" in hook_urls[-1]
    assert "maxCount=120" in hook_urls[-1]


def test_iter_items_exact_multiple_stops_on_the_empty_page(client):
    points_link = client.get_json("dataservers")["Items"][0]["Links"]["Points"]
    assert len(list(client.iter_items(points_link, page_size=102))) == 510  # 5 full pages, then an empty one


def test_iter_items_rejects_a_resource_that_is_not_a_collection(client):
    with pytest.raises(PIWebAPIError, match="no Items list"):
        list(client.iter_items("system"))


def test_404_names_the_url_and_says_check_the_webid(client):
    with pytest.raises(PIWebAPIError) as caught:
        client.get_json("points/F1DPAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    error = caught.value
    assert error.status == 404
    assert "404" in str(error)
    assert "/points/F1DP" in str(error)
    assert "WebID" in str(error)
    assert error.errors  # the server's Errors text is kept


def test_400_carries_the_servers_message(client):
    webid = first_points(client, 1)[0]["WebId"]
    with pytest.raises(PIWebAPIError) as caught:
        client.get_json(f"streams/{webid}/recorded", {**RECORDED, "maxCount": 10**9})
    error = caught.value
    assert error.status == 400
    assert error.errors
    assert error.errors[0] in str(error)
    assert "maxCount" in str(error)
    assert "tries" not in str(error)  # a 400 is never retried


def test_connection_refused_says_what_to_check():
    with socket.socket() as sock:  # a free port with nobody listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = ClientSettings(url=f"http://127.0.0.1:{port}/piwebapi", auth_type="anonymous", retry=FAST_RETRY)
    with PIWebAPIClient(settings) as client, pytest.raises(PIWebAPIError) as caught:
        client.get_json("system")
    assert caught.value.status == 0
    assert "could not connect" in str(caught.value)
    assert "pi_web_api.url" in str(caught.value)


def test_every_post_carries_the_csrf_header(client, simulator):
    # the simulator refuses a POST without X-Requested-With (a real server's CSRF defense) ...
    assert requests.post(f"{simulator.url}/batch", json={}, timeout=10).status_code == 403
    # ... and the client's batch gets through it
    answer = client.batch({})
    assert answer == {}
    assert client.batch({"s": SubRequest("system")})["s"].status == 200


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"url": "pi.example.com/piwebapi"}, "must be an http(s) URL"),
        ({"url": "https://user:pw@pi.example.com/piwebapi"}, "must not contain a user name or password"),
        ({"url": "https://pi/piwebapi", "ca_bundle": "/no/such/ca.pem"}, "does not exist"),
        ({"url": "https://pi/piwebapi", "retry": {"retry_statuses": [404]}}, "not a transient HTTP status"),
        ({"url": "https://pi/piwebapi", "max_connections": 0}, "max_connections"),
    ],
)
def test_settings_errors_name_the_key(settings, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ClientSettings(**settings)


def test_pool_is_sized_to_max_connections(simulator):
    with make_client(simulator, max_connections=13) as client:
        adapter = client.session.get_adapter(simulator.url)
        assert adapter._pool_maxsize == 13
        assert client.session.headers["X-Requested-With"]


def test_error_texts_for_403_depend_on_the_method_and_urls_lose_secrets():
    url = "https://user:pw@pi.example.com:8443/piwebapi/batch?access_token=abc&webId=F1DP&client_secret=xyz"
    post = http_error("POST", url, 403, b'{"Errors": ["Forbidden."]}', 1)
    assert "X-Requested-With" in str(post)
    assert "Forbidden" in str(post)
    get = http_error("GET", url, 403, b"", 1)
    assert "identity mapping" in str(get)
    for error in (post, get):
        assert error.url == "https://pi.example.com:8443/piwebapi/batch?access_token=***&webId=F1DP&client_secret=***"
        for secret in ("abc", "xyz", "pw@"):
            assert secret not in str(error)
    assert safe_url("http://h/piwebapi/" + "x" * 400).endswith("...")
    assert len(safe_url("http://h/piwebapi/" + "x" * 400)) == 300
