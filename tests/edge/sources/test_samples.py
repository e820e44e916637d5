"""Every source registers itself, its sample config loads through the registry, and the docs show it verbatim."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from iot_connector.sources.base import registered

ROOT = Path(__file__).parents[3]


@pytest.mark.parametrize("protocol", ["opcua", "mqtt", "modbus"])
def test_sample_loads_through_the_registry_and_is_in_the_docs(protocol):
    sample = (ROOT / f"src/iot_connector/sources/{protocol}/sample.yaml").read_text()
    data = yaml.safe_load(sample)
    config_cls, source_cls = registered()[data["type"]]
    config = config_cls.model_validate(data)
    assert source_cls.protocol == protocol
    assert config.type == protocol
    assert sample in (ROOT / "docs/sources.md").read_text(), f"docs/sources.md does not show {protocol}/sample.yaml"
