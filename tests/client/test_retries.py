"""Retries against a flaky simulator: 429 + Retry-After, 5xx bursts, dropped connections, cut bodies.
Each test compares with a clean run of the same simulator: retried answers carry the same data."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from osipi_connector.piwebapi.client import PIWebAPIClient, PIWebAPIError, SubRequest
from osipi_connector.piwebapi.settings import RetrySettings
from osipi_connector.simulator.config import FaultConfig
from osipi_connector.simulator.faults import Fault
from osipi_connector.simulator.http import Request, Response
from osipi_connector.simulator.points import DEFAULT_POINTS
from osipi_connector.simulator.server import RunningSimulator
from tests.client.conftest import FAST_RETRY, RECORDED, first_points, serving

TAGS = 6


def workload(client: PIWebAPIClient) -> dict[str, Any]:
    """A little of everything: a paged collection, raw recorded bytes, JSON, and a batch."""
    points = first_points(client, TAGS)
    webids = [p["WebId"] for p in points]
    link = client.get_json("dataservers")["Items"][0]["Links"]["Points"]
    return {
        "paged": [p["WebId"] for p in client.iter_items(link, page_size=4)],
        "raw": [client.get_bytes(f"streams/{w}/recorded", RECORDED) for w in webids[:3]],
        "json": client.get_json(f"streams/{webids[3]}/recorded", RECORDED),
        "batch": {
            k: (v.status, v.content)
            for k, v in client.batch({w: SubRequest(f"streams/{w}/recorded", RECORDED) for w in webids}).items()
        },
    }


@pytest.fixture(scope="module")
def clean() -> dict[str, Any]:
    with serving() as (_, client):
        return workload(client)


def record_faults(running: RunningSimulator) -> list[Fault]:
    """The faults the simulator injected (status, drop or cut body), as it draws them."""
    fired: list[Fault] = []
    draw = running.app.faults.draw

    def recording() -> Fault:
        fault = draw()
        if fault.status or fault.drop or fault.truncate:
            fired.append(fault)
        return fault

    running.app.faults.draw = recording
    return fired


def count_requests(client: PIWebAPIClient) -> list[int]:
    statuses: list[int] = []
    client.session.hooks["response"].append(lambda r, *a, **k: statuses.append(r.status_code))
    return statuses


def test_clean_run_has_data(clean):
    assert len(clean["paged"]) == 20 + len(DEFAULT_POINTS)  # the generated tags and PI's default points
    assert all(len(raw) > 1000 for raw in clean["raw"])
    assert all(status == 200 for status, _ in clean["batch"].values())
    assert all(content["Items"] for _, content in clean["batch"].values())


@pytest.mark.parametrize(
    "faults",
    [
        FaultConfig(error_rate=0.4, error_burst=3, seed=3),
        FaultConfig(drop_rate=0.3, seed=5),
        FaultConfig(truncate_rate=0.3, seed=6),
        FaultConfig(error_rate=0.15, drop_rate=0.15, truncate_rate=0.15, seed=8),
    ],
    ids=["5xx-bursts", "dropped-connections", "cut-bodies", "all-at-once"],
)
def test_faults_are_survived_with_the_same_data(clean, faults):
    with serving(faults=faults) as (running, client):
        fired = record_faults(running)
        assert workload(client) == clean
    assert len(fired) >= 2, "the fault injection did not reach the client"


def test_cut_bodies_are_retried_by_the_client_not_only_urllib3(clean, caplog):
    with serving(faults=FaultConfig(truncate_rate=0.3, seed=2)) as (running, client):
        fired = record_faults(running)
        assert workload(client) == clean
    assert fired
    assert any("cut off" in r.getMessage() for r in caplog.records)


def test_429_waits_for_retry_after(clean):
    # 5 requests per 0.5 s; the simulator asks to wait whole seconds, our own backoff is 10 ms
    with serving(rate_limit_max_requests=5, rate_limit_duration_s=0.5) as (running, client):
        waits: list[int] = []
        limit = running.app.limiter.retry_after

        def recording(client_ip: str) -> int | None:
            wait = limit(client_ip)
            if wait is not None:
                waits.append(wait)
            return wait

        running.app.limiter.retry_after = recording
        started = time.monotonic()
        assert workload(client) == clean
        elapsed = time.monotonic() - started
    refused = len(waits)
    assert refused >= 1
    assert elapsed >= refused * 0.9  # each 429 waited about Retry-After (1 s), not the 10 ms backoff


def test_persistent_5xx_gives_a_clear_error_after_max_attempts():
    faults = FaultConfig(error_rate=1.0, error_burst=10, error_statuses=(503,), seed=1)
    retry = RetrySettings(max_attempts=3, backoff_seconds=0.01)
    with serving(faults=faults, settings={"retry": retry}) as (running, client):
        fired = record_faults(running)
        with pytest.raises(PIWebAPIError) as caught:
            client.get_json("system")
    assert caught.value.status == 503
    assert [f.status for f in fired] == [503, 503, 503]
    message = str(caught.value)
    assert "after 3 tries" in message
    assert "Simulated server error 503" in message
    assert "/piwebapi/system" in message


def test_read_timeout_gives_a_clear_error():
    retry = RetrySettings(max_attempts=2, backoff_seconds=0.01)
    slow = serving(faults=FaultConfig(latency_ms=400), settings={"read_timeout": 0.1, "retry": retry})
    with slow as (_, client), pytest.raises(PIWebAPIError) as caught:
        client.get_json("system")
    assert caught.value.status == 0
    assert "read_timeout=0.1" in str(caught.value)


def test_batch_post_that_is_cut_is_sent_again(clean):
    with serving(faults=FaultConfig(truncate_rate=0.4, seed=9)) as (running, client):
        webids = [p["WebId"] for p in first_points(client, TAGS)]
        statuses = count_requests(client)
        fired = record_faults(running)
        answer = client.batch({w: SubRequest(f"streams/{w}/recorded", RECORDED) for w in webids})
    assert {k: (v.status, v.content) for k, v in answer.items()} == clean["batch"]
    assert fired  # at least one cut answer ...
    assert len(statuses) == len(fired) + 1  # ... each followed by the whole batch again


def test_a_thread_pool_shares_one_client_through_faults(clean):
    """The way the extractor uses it: worker threads, one client, pool sized to the workers."""
    faults = FaultConfig(error_rate=0.1, drop_rate=0.1, truncate_rate=0.1, latency_ms=2, latency_jitter_ms=2, seed=12)
    with serving(faults=faults, settings={"max_connections": 4}) as (running, client):
        fired = record_faults(running)
        webids = [p["WebId"] for p in first_points(client, TAGS)][:3]

        def one(i: int) -> bytes:
            return client.get_bytes(f"streams/{webids[i % 3]}/recorded", RECORDED)

        with ThreadPoolExecutor(max_workers=4) as pool:
            raw = list(pool.map(one, range(24)))
    assert raw == [clean["raw"][i % 3] for i in range(24)]
    assert fired


def scripted_route(running: RunningSimulator, path: str, answers: list[Response]) -> list[int]:
    """GET `path` answers the scripted responses in turn, then the last one forever; returns the call log."""
    calls: list[int] = []

    def handler(request: Request) -> Response:
        calls.append(len(calls))
        return answers[min(len(calls), len(answers)) - 1]

    running.sim.router.add("GET", path, handler)
    return calls


def test_unparsable_and_webexception_bodies_are_retried():
    good = Response(200, {"Items": [1, 2, 3]})
    web_exception = Response(200, {"WebException": {"Errors": ["Stream failed mid-transfer."], "StatusCode": 500}})
    with serving() as (running, client):
        calls = scripted_route(running, "/test/garbled", [Response(200, b'{"Items": [1, 2'), web_exception, good])
        assert client.get_json("test/garbled") == {"Items": [1, 2, 3]}
        assert len(calls) == 3
        stuck = scripted_route(running, "/test/stuck", [web_exception])
        with pytest.raises(PIWebAPIError) as caught:
            client.get_json("test/stuck")
    assert len(stuck) == FAST_RETRY.max_attempts
    assert "Stream failed mid-transfer" in str(caught.value)
    assert f"{FAST_RETRY.max_attempts} tries" in str(caught.value)
