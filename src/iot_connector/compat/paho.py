"""paho-mqtt's private API the MQTT source relies on (checked with paho-mqtt 2.2.0).

* `Client._create_socket()` is overridden (`WrappedSocketClient`) so the socket paho opens (plain or TLS)
  passes through our wrapper before paho uses it: the batched receive path (sources/mqtt/wire.py,
  PacketBuffer) reads the socket in bulk and hands paho whole packets. paho treats
  the wrapper as any `SocketLike`, as it does its own TLS and websocket wrappers. paho 2.2 spends about
  25 µs of CPU per received PUBLISH; this is what lifts one process past 50k messages/s (docs/benchmarks.md).

The hook is checked when a client is built, so a paho release that drops it fails loudly instead of the
wrapper silently never being installed. Tests: tests/edge/sources/test_compat.py (against mosquitto),
tests/edge/sources/test_mqtt_wire.py.
"""

from __future__ import annotations

from typing import Any

import paho.mqtt.client as mqtt

from iot_connector.compat import require

CHECKED = "2.2.0"
DISTRIBUTION = "paho-mqtt"


def check_create_socket() -> None:
    require(DISTRIBUTION, mqtt.Client, "_create_socket", (), CHECKED, "the batched MQTT receive path")


CHECKS = (check_create_socket,)


class WrappedSocketClient(mqtt.Client):
    """paho Client whose freshly opened socket goes through `wrap` before paho uses it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        check_create_socket()  # after paho's __init__: its __del__ needs a whole client

    def wrap(self, sock: Any) -> Any:
        """The object paho reads and writes instead of `sock` (it must behave as a socket)."""
        return sock

    def _create_socket(self) -> Any:
        return self.wrap(super()._create_socket())
