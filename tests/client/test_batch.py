"""The batch controller from the client: keys and order, 207 split, per-key failures, ParentIds and
Parameters, follow-up batches for transient sub-request failures, and the sequential fallback on 405."""

from __future__ import annotations

import orjson
import pytest

from osipi_connector.piwebapi.client import PIWebAPIClient, SubRequest, SubResponse
from osipi_connector.piwebapi.settings import RetrySettings
from osipi_connector.simulator.http import Request, Response
from osipi_connector.simulator.server import RunningSimulator
from tests.client.conftest import RECORDED, first_points, make_client, serving

UNKNOWN = "points/F1DPAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"


def mixed(webids: list[str]) -> dict[str, SubRequest]:
    """Keys in no particular order; good, unknown and malformed resources; a parent and its children."""
    return {
        "zeta": SubRequest(f"streams/{webids[0]}/recorded", RECORDED),
        "alpha": SubRequest("dataservers"),
        "missing": SubRequest(UNKNOWN),
        "bad": SubRequest("points/not-a-webid"),
        "mid": SubRequest(f"points/{webids[1]}", {"selectedFields": "Name;WebId"}),
        "pts": SubRequest(
            "dataservers/{0}/points",
            {"maxCount": 5},
            parent_ids=["alpha"],
            parameters=["$.alpha.Content.Items[0].WebId"],
        ),
        "orphan": SubRequest("points/{0}", parent_ids=["missing"], parameters=["$.missing.Content.WebId"]),
    }


def contents(answer: dict[str, SubResponse], base_url: str) -> object:
    """Statuses and contents, with the server's own URL (in Links) made neutral."""
    text = orjson.dumps({k: (v.status, v.content) for k, v in answer.items()}).decode()
    return orjson.loads(text.replace(base_url, "BASE"))


def check_mixed(client: PIWebAPIClient, answer: dict[str, SubResponse], webids: list[str]) -> None:
    assert list(answer) == ["zeta", "alpha", "missing", "bad", "mid", "pts", "orphan"]  # the caller's keys, in order
    assert answer["zeta"].ok
    assert answer["zeta"].content == client.get_json(f"streams/{webids[0]}/recorded", RECORDED)
    assert answer["alpha"].content == client.get_json("dataservers")
    assert answer["missing"].status == 404
    assert answer["missing"].content["Errors"]
    assert answer["bad"].status == 400
    assert not answer["bad"].ok
    assert answer["mid"].content == {"Name": answer["mid"].content["Name"], "WebId": webids[1]}
    assert [p["WebId"] for p in answer["pts"].content["Items"]] == [p["WebId"] for p in first_points(client, 5)]
    assert answer["orphan"].status == 409
    assert "missing" in str(answer["orphan"].content)


@pytest.fixture(scope="module")
def batch_answer(simulator) -> tuple[object, list[str]]:
    with make_client(simulator) as client:
        webids = [p["WebId"] for p in first_points(client, 2)]
        answer = client.batch(mixed(webids))
        check_mixed(client, answer, webids)
        assert client.batch_enabled
        return contents(answer, simulator.url), webids


def test_batch_keys_order_207_and_per_key_failures(batch_answer):
    answer, _ = batch_answer
    assert (
        sum(200 <= status < 300 for status, _ in answer.values()) == 4
    )  # failures are reported per key, the rest succeeds


def test_the_body_uses_absolute_resources(simulator):
    with make_client(simulator) as client:
        bodies: list[bytes] = []
        client.session.hooks["response"].append(lambda r, *a, **k: bodies.append(r.request.body))
        client.batch({"s": SubRequest("system", {"a": True, "b": [1, 2], "c": None})})
    assert f'"Resource":"{simulator.url}/system?a=true&b=1&b=2"'.encode() in bodies[0]


def flaky_route(running: RunningSimulator, failures: int, status: int = 503) -> list[int]:
    """GET /test/flaky answers `status` the first `failures` times, then 200; returns the call log."""
    calls: list[int] = []

    def flaky(request: Request) -> Response:
        calls.append(len(calls))
        if len(calls) <= failures:
            return Response(status, {"Errors": [f"Simulated transient failure {len(calls)}."]})
        return Response(200, {"Calls": len(calls)})

    running.sim.router.add("GET", "/test/flaky", flaky)
    return calls


def count_posts(client: PIWebAPIClient) -> list[str]:
    posts: list[str] = []

    def hook(response, *args, **kwargs) -> None:  # a hook that returns something replaces the response
        if response.request.method == "POST":
            posts.append(response.url)

    client.session.hooks["response"].append(hook)
    return posts


def test_transient_sub_request_failures_are_retried_in_follow_up_batches():
    with serving() as (running, client):
        calls = flaky_route(running, failures=2)
        posts = count_posts(client)
        answer = client.batch(
            {
                "flaky": SubRequest("test/flaky"),
                "child": SubRequest("test/flaky", parent_ids=["flaky"]),
                "steady": SubRequest("system"),
            }
        )
    assert answer["flaky"].status == 200
    assert answer["child"].status == 200  # it failed with its parent (409) and went along with it
    assert answer["steady"].status == 200
    assert len(posts) == 3  # the first batch and two follow-ups
    assert answer["child"].content == {"Calls": len(calls)}


def test_sub_requests_still_failing_after_max_attempts_are_reported_per_key():
    retry = RetrySettings(max_attempts=3, backoff_seconds=0.01)
    with serving(settings={"retry": retry}) as (running, client):
        calls = flaky_route(running, failures=100, status=500)
        posts = count_posts(client)
        answer = client.batch({"flaky": SubRequest("test/flaky"), "steady": SubRequest("system")})
    assert answer["flaky"].status == 500
    assert answer["flaky"].content == {"Errors": ["Simulated transient failure 3."]}
    assert answer["steady"].ok
    assert len(posts) == len(calls) == 3


def test_non_transient_failures_are_not_retried():
    with serving() as (running, client):
        calls = flaky_route(running, failures=100, status=404)
        posts = count_posts(client)
        assert client.batch({"gone": SubRequest("test/flaky")})["gone"].status == 404
    assert len(posts) == len(calls) == 1


# --- the batch controller disabled (405) --------------------------------------------------------------


def test_405_falls_back_to_sequential_requests_with_the_same_answers(batch_answer):
    expected, webids = batch_answer
    with serving(tags=500, batch_enabled=False) as (running, client):
        posts = count_posts(client)
        answer = client.batch(mixed(webids))
        assert not client.batch_enabled
        check_mixed(client, answer, webids)
        assert contents(answer, running.url) == expected
        # remembered for the client's lifetime: the next batch does not POST again
        again = client.batch({"s": SubRequest("system")})
        assert again["s"].ok
    assert len(posts) == 1


@pytest.mark.parametrize("batch_enabled", [True, False])
def test_unresolvable_parameters_are_reported_per_key_as_the_server_does(batch_enabled):
    with serving(batch_enabled=batch_enabled) as (_, client):
        answer = client.batch(
            {
                "ds": SubRequest("dataservers"),
                "none": SubRequest("points/{0}", parent_ids=["ds"], parameters=["$.ds.Content.Nothing"]),
                "many": SubRequest("points/{0}", parent_ids=["ds"], parameters=["$.ds.Content.Items[0].Links.*"]),
            }
        )
    assert answer["ds"].ok
    assert answer["none"].status == 400
    assert "did not select any tokens" in answer["none"].content["Errors"][0]
    assert answer["many"].status == 400
    assert "selected 3 tokens" in answer["many"].content["Errors"][0]  # Self, Points, EnumerationSets


def test_fallback_retries_transient_failures_per_request():
    with serving(batch_enabled=False) as (running, client):
        calls = flaky_route(running, failures=2)
        assert client.batch({"flaky": SubRequest("test/flaky")})["flaky"].content == {"Calls": 3}
    assert len(calls) == 3
