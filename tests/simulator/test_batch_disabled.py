"""`SimConfig(batch_enabled=False)` / `simulate --no-batch`: a server whose batch controller is disabled."""

from __future__ import annotations

import requests

from osipi_connector.demo import background_simulator
from osipi_connector.simulator.config import SimConfig
from osipi_connector.simulator.server import running_simulator
from tests.conftest import FIXED_NOW
from tests.simulator.test_batch import chain, post_batch

NOT_SUPPORTED = {"Errors": ["The requested resource does not support http method 'POST'."]}


def test_disabled_batch_answers_405_with_errors_and_other_controllers_still_work(http):
    config = SimConfig(seed=7, tags=20, now=FIXED_NOW, rate_limit_max_requests=0, batch_enabled=False)
    with running_simulator(config) as running:
        assert post_batch(http, running.url, chain(), expect=405) == NOT_SUPPORTED
        # the same requests one by one still answer
        assert http.get(f"{running.url}/dataservers").status_code == 200
        # CSRF defense still comes first, as on a real server
        anonymous = requests.post(f"{running.url}/batch", json=chain(), timeout=10)
        assert anonymous.status_code == 403


def test_enabled_batch_is_the_default(simulator, http):
    assert SimConfig().batch_enabled is True
    assert set(post_batch(http, simulator.url, chain())) == {"ds", "pts", "each"}


def test_cli_no_batch_flag_serves_405():
    with background_simulator(5, "--no-batch") as url:
        response = requests.post(f"{url}/batch", json=chain(), headers={"X-Requested-With": "t"}, timeout=10)
    assert response.status_code == 405
    assert response.json() == NOT_SUPPORTED
