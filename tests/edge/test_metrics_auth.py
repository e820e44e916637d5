"""The metrics endpoint behind basic auth (metrics.basic_auth), the warning for an open one, and the container
healthcheck that treats a 401 as alive."""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import requests

from iot_connector.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]


def test_basic_auth_guards_the_scrape_and_the_healthcheck_still_sees_it_alive(monkeypatch, caplog):
    metrics = Metrics()
    with caplog.at_level(logging.WARNING, logger="iot_connector.metrics"):
        port = metrics.serve(0, "127.0.0.1", ("prometheus", "scrape-secret-123"))
    try:
        assert not caplog.records  # loopback and authenticated: nothing to warn about
        url = f"http://127.0.0.1:{port}/metrics"
        assert requests.get(url, timeout=5).status_code == 401
        assert requests.get(url, auth=("prometheus", "nope"), timeout=5).status_code == 401
        scraped = requests.get(url, auth=("prometheus", "scrape-secret-123"), timeout=5)
        assert scraped.status_code == 200
        assert "iot_records_read" in scraped.text

        spec = importlib.util.spec_from_file_location("healthcheck", ROOT / "deploy" / "healthcheck.py")
        assert spec is not None
        assert spec.loader is not None
        healthcheck = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(healthcheck)
        monkeypatch.setenv("IOT_CONNECTOR_MODE", "run")
        monkeypatch.setenv("IOT_CONNECTOR_METRICS_PORT", str(port))
        monkeypatch.delenv("IOT_CONNECTOR_HEALTH_URL", raising=False)
        assert healthcheck.healthy() == (True, f"{url}: 401")
    finally:
        metrics.stop()


def test_an_open_endpoint_off_loopback_is_warned_about(caplog):
    metrics = Metrics()
    with caplog.at_level(logging.WARNING, logger="iot_connector.metrics"):
        metrics.serve(0, "127.0.0.2")  # loopback to Linux, but not one of the names the check trusts
    metrics.stop()
    assert "metrics on 127.0.0.2:0 without authentication" in caplog.text
    assert "metrics.basic_auth" in caplog.text
