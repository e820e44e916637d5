"""OPC UA config validation and the sample config (no server needed)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from iot_connector.sources.opcua import OpcuaConfig


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"endpoint": "http://h:4840"}, "must look like opc.tcp://"),
        ({"nodes": ["Temperature"]}, "is not nsu=<namespace uri>"),
        ({"nodes": []}, "give nodes to monitor, a browse section, or both"),
        ({"security_policy": "Basic256Sha256"}, "use None/None, or a policy with Sign"),
        ({"security_policy": "Basic256Sha256", "security_mode": "Sign"}, "needs cert_file and key_file"),
        (
            {"security_policy": "Basic256Sha256", "security_mode": "Sign", "cert_file": "c", "key_file": "k"},
            "needs trusted_server_certs",
        ),
        ({"security_policy": "Basic128"}, "security_policy"),
        ({"nodes": ["i=1", "i=1"]}, "listed more than once"),
        ({"monitoring": {"deadband_type": "relative"}}, "deadband_type"),
        ({"browse": {"root": "i=85", "depht": 2}}, "depht"),
    ],
)
def test_bad_configs_name_what_is_wrong(change, message):
    data = {"name": "o", "endpoint": "opc.tcp://h:4840/x", "nodes": ["i=2258"], **change}
    with pytest.raises(ValidationError, match=re.compile(message, re.S)):
        OpcuaConfig.model_validate(data)


def test_sample_config_loads():
    sample = Path(__file__).parents[3] / "src/iot_connector/sources/opcua/sample.yaml"
    cfg = OpcuaConfig.model_validate(yaml.safe_load(sample.read_text()))
    assert cfg.nodes[1].deadband_value == 0.5
