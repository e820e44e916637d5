"""MQTT source: JSON, raw and Sparkplug B payloads over mqtt:// or mqtts:// (see sample.yaml)."""

from iot_connector.sources.base import register
from iot_connector.sources.mqtt.config import MqttConfig, TopicConfig
from iot_connector.sources.mqtt.source import MqttSource

register("mqtt", MqttConfig, MqttSource)

__all__ = ["MqttConfig", "MqttSource", "TopicConfig"]
