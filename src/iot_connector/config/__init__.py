"""Typed configuration of the edge agent: models, loading/saving the config directory, secrets at rest."""

from iot_connector.config.loader import (
    STATE_FILE,
    YAML_FILE,
    ConfigError,
    json_schemas,
    load_config,
    parse_config,
    save_state,
)
from iot_connector.config.models import AgentConfig
from iot_connector.config.proxy import apply_agent_proxy

__all__ = [
    "STATE_FILE",
    "YAML_FILE",
    "AgentConfig",
    "ConfigError",
    "apply_agent_proxy",
    "json_schemas",
    "load_config",
    "parse_config",
    "save_state",
]
