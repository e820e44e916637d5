"""`osipi-connector simulate --late-delay MIN MAX --edit-delay S`: the delays reach the simulator's config (the
hourly benchmark keeps late data inside the lookback with them); left out, the simulator's defaults."""

from __future__ import annotations

import pytest

from osipi_connector import cli
from osipi_connector.simulator import server
from osipi_connector.simulator.config import SimConfig


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> list[SimConfig]:
    """The config `simulate` would serve (the blocking server itself is not started)."""
    configs: list[SimConfig] = []
    monkeypatch.setattr(server, "serve", lambda config, *rest: configs.append(config))
    return configs


def test_late_and_edit_delays_are_passed_on(served: list[SimConfig]) -> None:
    cli.main(["simulate", "--late-delay", "60", "540", "--edit-delay", "300"])
    assert (served[0].late_delay_s, served[0].edit_delay_s) == ((60.0, 540.0), 300.0)


def test_without_them_the_simulator_defaults_hold(served: list[SimConfig]) -> None:
    cli.main(["simulate"])
    defaults = SimConfig()
    assert (served[0].late_delay_s, served[0].edit_delay_s) == (defaults.late_delay_s, defaults.edit_delay_s)
