"""MQTT source configuration: broker URL, TLS, session, and how each topic's payload becomes records."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from paho.mqtt.client import topic_matches_sub
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

from iot_connector.sources.base import SourceConfig

PayloadFormat = Literal["json", "raw", "sparkplugb"]
TimestampUnit = Literal["s", "ms", "us", "ns", "iso"]


class TopicConfig(BaseModel):
    """One subscription and the mapping of its payloads."""

    model_config = ConfigDict(extra="forbid")

    topic: str = Field(..., min_length=1, description="filter; + and # wildcards allowed")
    qos: Literal[0, 1, 2] = 1
    format: PayloadFormat = "json"
    value_path: str | None = Field(
        None, description="json: dotted path to the value (an object gives one record per key); empty = whole payload"
    )
    timestamp_path: str | None = Field(None, description="json: dotted path to the source timestamp")
    timestamp_unit: TimestampUnit = "ms"
    quality_path: str | None = Field(None, description="json: dotted path to a quality (bool, GOOD/BAD, status code)")
    unit: str | None = None

    @field_validator("topic")
    @classmethod
    def _topic(cls, topic: str) -> str:
        levels = topic.split("/")
        for i, level in enumerate(levels):
            if "#" in level and (level != "#" or i != len(levels) - 1):
                raise ValueError(f"topic {topic!r}: '#' must be a whole level and the last one")
            if "+" in level and level != "+":
                raise ValueError(f"topic {topic!r}: '+' must be a whole level")
        return topic

    @model_validator(mode="after")
    def _json_only(self) -> TopicConfig:
        if self.format != "json" and (self.value_path or self.timestamp_path or self.quality_path):
            raise ValueError(f"topic {self.topic!r}: value/timestamp/quality paths apply only to format json")
        if self.format == "sparkplugb" and not self.topic.startswith("spBv1.0/"):
            raise ValueError(f"topic {self.topic!r}: Sparkplug B topics start with spBv1.0/ (e.g. spBv1.0/#)")
        return self


class MqttConfig(SourceConfig):
    """A subscription to one broker."""

    type: Literal["mqtt"] = "mqtt"
    url: str = Field(..., description="mqtt://host:1883 or mqtts://host:8883")
    client_id: str = Field("", description="fixed id; required for a persistent session")
    protocol_version: Literal["5", "3.1.1"] = "5"
    clean_start: bool = Field(True, description="false = persistent session: the broker keeps QoS>=1 messages")
    session_expiry_s: int = Field(86400, ge=0, description="MQTT 5: how long the broker keeps a persistent session")
    keepalive_s: int = Field(30, ge=5)
    username: str | None = None
    password: SecretStr | None = None
    ca_file: str | None = Field(None, description="CA bundle that signed the broker certificate (mqtts)")
    cert_file: str | None = Field(None, description="client certificate for mutual TLS")
    key_file: str | None = Field(None, description="client private key for mutual TLS")
    max_pending: int = Field(20000, ge=100, description="received but not yet emitted messages before reading pauses")
    batch_size: int = Field(5000, ge=1, description="most messages turned into records per emit call")
    request_rebirth: bool = Field(False, description="Sparkplug: publish a Node Control/Rebirth on an unknown alias")
    topics: list[TopicConfig] = Field(..., min_length=1)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts"):
            raise ValueError(f"url {url!r}: scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError(f"url {url!r}: needs a host, e.g. mqtt://broker:1883")
        _ = parts.port  # raises ValueError for a non-numeric port
        if parts.username or parts.password:
            raise ValueError("url: put credentials in username/password, not in the URL")
        return url

    @model_validator(mode="after")
    def _consistent(self) -> MqttConfig:
        if not self.clean_start and not self.client_id:
            raise ValueError("clean_start: false (persistent session) requires a fixed client_id")
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together (mutual TLS needs both)")
        if (self.ca_file or self.cert_file) and not self.tls:
            raise ValueError("ca_file/cert_file/key_file need an mqtts:// url")
        if self.password is not None and self.username is None:
            raise ValueError("password without username")
        return self

    @property
    def tls(self) -> bool:
        return self.url.startswith("mqtts:")

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or ""

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (8883 if self.tls else 1883)

    def topic_for(self, topic: str) -> TopicConfig | None:
        """The first configured subscription whose filter matches `topic`."""
        return next((t for t in self.topics if topic_matches_sub(t.topic, topic)), None)
