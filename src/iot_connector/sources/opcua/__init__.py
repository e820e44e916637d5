"""OPC UA source: subscriptions or polling, security policies, browse discovery (see sample.yaml)."""

from iot_connector.sources.base import register
from iot_connector.sources.opcua.config import OpcuaConfig
from iot_connector.sources.opcua.source import OpcuaSource

register("opcua", OpcuaConfig, OpcuaSource)

__all__ = ["OpcuaConfig", "OpcuaSource"]
