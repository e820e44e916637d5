"""Errors a user can act on (issue 12, defect 3): an HTML page is not retried as a broken body, an
unreachable host logs one line per retry (not urllib3's object dumps), and the client counts every HTTP
request it sends — against the real simulator (its `--login-page` and fault switches) and a closed port."""

from __future__ import annotations

import logging
import socket
import time

import pytest

from osipi_connector import cli
from osipi_connector.piwebapi.client import PIWebAPIClient, PIWebAPIError, SubRequest
from osipi_connector.piwebapi.settings import ClientSettings, RetrySettings
from osipi_connector.simulator.config import FaultConfig
from tests.client.conftest import RECORDED, first_points, serving

SLOW_RETRY = RetrySettings(max_attempts=5, backoff_seconds=1.0)  # five tries of an HTML page would take > 4 s


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def test_a_login_page_fails_at_once_saying_it_is_not_pi_web_api_json() -> None:
    with serving(login_page=True, settings={"retry": SLOW_RETRY}) as (_, client):
        started = time.monotonic()
        with pytest.raises(PIWebAPIError) as caught:
            client.get_json("dataservers")
        assert time.monotonic() - started < 1.0, "an HTML page is not retried"
        assert client.requests_sent() == 1
        with pytest.raises(PIWebAPIError) as in_batch:
            client.batch({"a": SubRequest("dataservers")})
    for message in (str(caught.value), str(in_batch.value)):
        assert "text/html" in message
        assert "not PI Web API JSON" in message
        assert "<!DOCTYPE html> <html><head><title>Sign in - Plant Portal" in message
        assert "pi_web_api.url" in message
        assert "smaller windows" not in message


def test_a_login_page_ends_the_cli_run_with_one_clear_message(tmp_path, capsys) -> None:
    with serving(login_page=True) as (running, _):
        config = tmp_path / "c.yaml"
        config.write_text(
            f'pi_web_api:\n  url: "{running.url}"\n  auth_type: anonymous\n'
            'extraction:\n  tag_names: ["SINUSOID"]\n'
            f'local:\n  lakehouse_root: "{tmp_path / "lake"}"\n'
        )
        started = time.monotonic()
        with pytest.raises(SystemExit) as exit_:
            cli.main(["run", "--config", str(config), "--no-progress"])
        assert time.monotonic() - started < 10
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "not PI Web API JSON" in err
    assert "text/html" in err


def test_an_unreachable_host_logs_one_line_per_retry_then_the_clear_message(caplog) -> None:
    retry = RetrySettings(max_attempts=5, backoff_seconds=0.01, max_backoff_seconds=0.02)
    settings = ClientSettings(url=f"http://127.0.0.1:{closed_port()}/piwebapi", auth_type="anonymous", retry=retry)
    caplog.set_level(logging.DEBUG)
    with PIWebAPIClient(settings) as client, pytest.raises(PIWebAPIError, match="could not connect") as caught:
        client.get_json("dataservers")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not [m for m in warnings if m.startswith("Retrying (")], "urllib3's raw Retrying(...) lines are gone"
    assert len(warnings) == retry.max_attempts - 1, warnings
    assert all("dataservers" in m and "try" in m and "Connection refused" in m for m in warnings)
    assert "Check pi_web_api.url" in str(caught.value)
    assert client.requests_sent() == retry.max_attempts


def test_requests_sent_counts_every_http_request_retries_included() -> None:
    """5xx bursts make the client send requests twice and more: it counts what the server received."""
    with serving(faults=FaultConfig(error_rate=0.3, error_burst=2, seed=3)) as (running, client):
        received: list[int] = []
        draw = running.app.faults.draw

        def counting():
            received.append(1)
            return draw()

        running.app.faults.draw = counting
        webids = [p["WebId"] for p in first_points(client, 6)]
        client.batch({w: SubRequest(f"streams/{w}/recorded", RECORDED) for w in webids})
        client.get_json(f"streams/{webids[0]}/recorded", RECORDED)
        assert client.requests_sent() == len(received) > 3
