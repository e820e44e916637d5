"""MQTT source (paho-mqtt 2.2): subscriptions, TLS, persistent sessions, acknowledge after emit.

paho runs its network loop in its own thread (its idiom); messages cross to the event loop through a deque
with one wake-up per burst, so the per-message cost stays low. With QoS >= 1 the PUBACK is sent (manual_ack)
only after `emit` returned, so whatever the agent had not accepted is redelivered by the broker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from iot_connector.model import Record, now_us
from iot_connector.sources.base import Emit, Source
from iot_connector.sources.mqtt.config import MqttConfig, TopicConfig
from iot_connector.sources.mqtt.payloads import JsonMapper, MalformedPayload, raw_records
from iot_connector.sources.mqtt.sparkplug import SparkplugDecoder, rebirth_request

log = logging.getLogger(__name__)


def new_client(config: MqttConfig) -> mqtt.Client:
    """A configured, not yet connected paho client (TLS, credentials, reconnect backoff)."""
    v5 = config.protocol_version == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=config.client_id,
        clean_session=None if v5 else config.clean_start,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        manual_ack=True,
    )
    if config.tls:
        client.tls_set(ca_certs=config.ca_file, certfile=config.cert_file, keyfile=config.key_file)
    if config.username is not None:
        client.username_pw_set(config.username, config.password.get_secret_value() if config.password else None)
    client.reconnect_delay_set(config.reconnect_min_delay_s, config.reconnect_max_delay_s)
    return client


def connect_args(config: MqttConfig) -> dict[str, Any]:
    args: dict[str, Any] = {"host": config.host, "port": config.port, "keepalive": config.keepalive_s}
    if config.protocol_version == "5":
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 0 if config.clean_start else config.session_expiry_s
        args.update(clean_start=config.clean_start, properties=props)
    return args


class MqttSource(Source):
    protocol = "mqtt"
    config: MqttConfig

    def __init__(self, config: MqttConfig, emit: Emit):
        super().__init__(config, emit)
        # (message, receive time, connection number): a PUBACK is only valid on the connection it came from
        self._pending: collections.deque[tuple[mqtt.MQTTMessage, int, int]] = collections.deque()
        self._connection = 0
        self._room = threading.Event()
        self._room.set()
        self._signalled = False
        self._stopped = asyncio.Event()
        self._wakeup = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._routes: dict[str, tuple[TopicConfig, JsonMapper | None] | None] = {}
        self._mappers = {id(t): JsonMapper(t) for t in config.topics if t.format == "json"}
        self.sparkplug = SparkplugDecoder(config.name, config.url)
        self.malformed = 0
        self._connected_once = False

    # --- paho thread -------------------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _userdata, _flags, reason, _props) -> None:
        if reason.is_failure:
            self.health.connected, self.health.last_error = False, f"broker refused the connection: {reason}"
            return
        if self._connected_once:
            self.health.reconnects += 1
        self._connection += 1
        self._connected_once = True
        self.health.connected, self.health.last_error = True, None
        # Subscribe on every connect: a persistent session keeps old subscriptions but never learns new ones.
        client.subscribe([(t.topic, t.qos) for t in self.config.topics])

    def _on_disconnect(self, _client, _userdata, _flags, reason, _props) -> None:
        if reason.is_failure and self.health.connected:  # keep a refusal's reason (bad password...) visible
            self.health.last_error = f"disconnected: {reason}"
        self.health.connected = False

    def _on_message(self, _client, _userdata, message: mqtt.MQTTMessage) -> None:
        while len(self._pending) >= self.config.max_pending and not self._stopped.is_set():
            self._room.clear()  # backpressure: stop reading the socket until the event loop catches up
            self._room.wait(0.5)
        self._pending.append((message, now_us(), self._connection))
        if not self._signalled and self._loop is not None:
            self._signalled = True
            self._loop.call_soon_threadsafe(self._wakeup.set)

    # --- event loop -----------------------------------------------------------------------------------
    async def run(self) -> None:
        self._loop = asyncio.get_running_loop()
        while not self._stopped.is_set():
            client = new_client(self.config)
            client.on_connect, client.on_disconnect, client.on_message = (
                self._on_connect,
                self._on_disconnect,
                self._on_message,
            )
            client.connect_async(**connect_args(self.config))
            client.loop_start()
            try:
                await self._drain_forever(client)
            except Exception as exc:  # emit refused: drop the session so the broker redelivers unacked messages
                self.health.last_error = f"emit failed, reconnecting: {type(exc).__name__}: {exc}"
                log.warning("mqtt source %s: %s", self.config.name, self.health.last_error)
            finally:
                client.disconnect()
                self._room.set()
                await asyncio.to_thread(client.loop_stop)
                self._pending.clear()
                self.health.connected = False
            if not self._stopped.is_set():
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), self.config.reconnect_min_delay_s)

    async def _drain_forever(self, client: mqtt.Client) -> None:
        while not self._stopped.is_set():
            self._signalled = False
            self._wakeup.clear()
            while self._pending and not self._stopped.is_set():
                n = min(len(self._pending), self.config.batch_size)
                batch = [self._pending.popleft() for _ in range(n)]
                records = self._to_records(client, batch)
                if records:
                    await self.emit(records)
                    self.health.records_read += len(records)
                    self.health.last_record_at_us = records[-1].edge_ts
                for message, _, connection in batch:  # in arrival order, as MQTT requires
                    # After a reconnect the broker resends unacked messages under their ids; an ack on a
                    # newer connection could hit another message with the same id, so it is skipped.
                    if message.qos and connection == self._connection:
                        client.ack(message.mid, message.qos)
                if len(self._pending) < self.config.max_pending // 2:
                    self._room.set()
            if not self._stopped.is_set():
                await self._wakeup.wait()

    def _route(self, topic: str) -> tuple[TopicConfig, JsonMapper | None] | None:
        if topic not in self._routes:
            sub = self.config.topic_for(topic)
            self._routes[topic] = None if sub is None else (sub, self._mappers.get(id(sub)))
        return self._routes[topic]

    def _to_records(self, client: mqtt.Client, batch: list[tuple[mqtt.MQTTMessage, int, int]]) -> list[Record]:
        records: list[Record] = []
        for message, edge_ts, _ in batch:
            topic = message.topic
            try:
                records.extend(self._convert(client, topic, message, edge_ts))
            except MalformedPayload as exc:
                self.malformed += 1
                self.health.details["malformed"] = str(self.malformed)
                self.health.last_error = f"malformed payload on {topic}: {exc}"
                log.warning("mqtt source %s: malformed payload on %s: %s", self.config.name, topic, exc)
        return records

    def _convert(self, client: mqtt.Client, topic: str, message: mqtt.MQTTMessage, edge_ts: int) -> list[Record]:
        route = self._route(topic)
        if route is None:
            return []  # a retained/queued message for a topic no longer configured
        sub, mapper = route
        if sub.format == "sparkplugb":
            result = self.sparkplug.decode(topic, message.payload, edge_ts)
            if result.rebirth_topic and self.config.request_rebirth:
                client.publish(result.rebirth_topic, rebirth_request(), qos=0)
            return result.records
        base = Record(
            source_id=self.config.name,
            protocol="mqtt",
            endpoint=self.config.url,
            tag_id=topic,
            tag_path=topic,
            data_type="",
            edge_ts=edge_ts,
            unit=sub.unit,
            attributes={"qos": str(message.qos), "retain": "true" if message.retain else "false"},
        )
        if mapper is not None:
            return mapper.records(base, message.payload)
        return raw_records(base, message.payload)

    async def stop(self) -> None:
        self._stopped.set()
        self._wakeup.set()
        self._room.set()

    async def test_connection(self) -> str:
        """Connect once (no subscription) and report the broker's answer."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future = loop.create_future()
        # Own client id and a clean, non-persistent session: a test must not touch or leave a session.
        probe = self.config.model_copy(
            update={"client_id": f"{self.config.client_id or self.config.name}-test", "clean_start": True}
        )
        client = new_client(probe)

        def on_connect(_c, _u, flags, reason, _p) -> None:
            loop.call_soon_threadsafe(lambda: answer.done() or answer.set_result((reason, flags)))

        def on_disconnect(_c, _u, _flags, reason, _p) -> None:
            loop.call_soon_threadsafe(lambda: answer.done() or answer.set_result((reason, None)))

        client.on_connect, client.on_disconnect = on_connect, on_disconnect
        args = connect_args(probe)
        try:
            await asyncio.to_thread(client.connect, **args)
            client.loop_start()
            reason, flags = await asyncio.wait_for(answer, 10)
        except (OSError, asyncio.TimeoutError) as exc:
            raise ConnectionError(f"cannot reach {self.config.url}: {type(exc).__name__}: {exc}") from exc
        finally:
            client.disconnect()
            await asyncio.to_thread(client.loop_stop)
        if flags is None:  # closed before CONNACK: typically a TLS client certificate the broker rejected
            raise ConnectionError(
                f"cannot reach {self.config.url}: the broker closed the connection before accepting it ({reason}); "
                "with mutual TLS check cert_file/key_file"
            )
        if reason.is_failure:
            raise ConnectionError(f"broker {self.config.url} refused the connection: {reason}")
        return f"connected to {self.config.url} (MQTT {self.config.protocol_version})"
