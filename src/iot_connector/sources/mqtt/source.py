"""MQTT source (paho-mqtt 2.2): subscriptions, TLS, persistent sessions, acknowledge after emit.

paho is driven from the event loop (its documented external-loop API: `socket()`, `loop_read()`,
`loop_write()`, `loop_misc()`, `want_write()`), with no network thread: one wake-up reads everything the
socket holds, QoS 0/1 PUBLISH packets are sliced out in bulk (`wire.py` says why and how), a batch is
numbered for record_id at once (`identity.py`), the common JSON shape becomes records and spool bytes in one
loop (`fastjson.py`), and the batch's PUBACKs leave in one write. With QoS >= 1 the PUBACK is sent (manual_ack) only after `emit` returned, so
whatever the agent had not accepted is redelivered by the broker. Each connection is a new paho client
(`session`), reconnected by `Source.run`; paho's own reconnect is never used.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from operator import itemgetter
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from iot_connector.model import Record, now_us
from iot_connector.sources.base import Emit, Source
from iot_connector.sources.mqtt import fastjson
from iot_connector.sources.mqtt.config import MqttConfig, TopicConfig
from iot_connector.sources.mqtt.identity import Arrivals, record_ids
from iot_connector.sources.mqtt.payloads import JsonMapper, MalformedPayload, raw_records
from iot_connector.sources.mqtt.sparkplug import SparkplugDecoder, rebirth_request
from iot_connector.sources.mqtt.wire import BatchedClient, Message, PacketBuffer, Publish, pubacks, take_publishes

log = logging.getLogger(__name__)
# A message's attributes, one shared dict per (qos, retain): records never change theirs once emitted
# (see Record.attributes), and a dict per message was ~3 % of the receive path.
_ATTRIBUTES = {
    (qos, retain): {"qos": str(qos), "retain": "true" if retain else "false"}
    for qos in range(3)
    for retain in (False, True)
}
_BY_INDEX = [_ATTRIBUTES[qos, retain] for qos in range(3) for retain in (False, True)]  # by qos * 2 + retain
_QOS, _MID = itemgetter(2), itemgetter(3)


def new_client(config: MqttConfig, batched: bool = True) -> mqtt.Client:
    """A configured, not yet connected paho client (TLS, credentials). `batched`: the event-loop-driven
    receive path of `wire.py`; False for paho's own network thread (loop_start)."""
    v5 = config.protocol_version == "5"
    client = (BatchedClient if batched else mqtt.Client)(
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
        # Received, not yet emitted: the messages and their edge_ts, side by side (a batch is two slices)
        self._pending: list[Message] = []
        self._pending_ts: list[int] = []
        self._topics: dict[bytes, str] = {}
        self._wakeup = asyncio.Event()
        self._routes: dict[str, tuple[TopicConfig, JsonMapper | None] | None] = {}
        self._mappers = {id(t): JsonMapper(t) for t in config.topics if t.format == "json"}
        self._plans: dict[str, Any] = {}  # topic -> fastjson plan, or None for the general path
        self.sparkplug = SparkplugDecoder(config.name, config.url)
        self.arrivals: Arrivals | None = None  # created at run: `state_dir` is set after construction
        self._last_stamp = 0

    def _stamp(self) -> int:
        """The next message's edge_ts, strictly increasing: a burst read at once does not share one stamp, so
        edge_ts orders the readings of a source (record_id no longer depends on it: see identity.py)."""
        self._last_stamp = max(now_us(), self._last_stamp + 1)
        return self._last_stamp

    def _stamps(self, count: int) -> range:
        """`_stamp()` for `count` messages read at once: one clock read per socket read, not per message."""
        first = max(now_us(), self._last_stamp + 1)
        self._last_stamp = first + count - 1
        return range(first, first + count)

    # --- paho callbacks (run inside loop_read on the event loop) ----------------------------------------
    def _on_connect(
        self,
        client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure:
            self.health.connected, self.health.last_error = False, f"broker refused the connection: {reason}"
            return
        self.established()
        # Subscribe on every connect: a persistent session keeps old subscriptions but never learns new ones.
        topics: list[tuple[str, int]] = [(t.topic, t.qos) for t in self.config.topics]
        client.subscribe(topics)

    def _on_disconnect(
        self,
        _client: mqtt.Client,
        _userdata: Any,
        _flags: mqtt.DisconnectFlags,
        reason: ReasonCode,
        _props: Properties | None,
    ) -> None:
        if reason.is_failure and self.health.connected:  # keep a refusal's reason (bad password...) visible
            self.health.last_error = f"disconnected: {reason}"
        self.health.connected = False

    def _on_message(self, _client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
        """Packets paho parses itself (QoS 2, MQTT 5 PUBLISH with properties)."""
        # paho types payload bytes | bytearray; a received one is bytes, which bytes() returns as is (no copy)
        payload = bytes(message.payload)
        self._pending.append(Publish(message.topic, payload, message.qos, message.mid, message.retain, message.dup))
        self._pending_ts.append(self._stamp())

    # --- one connection ----------------------------------------------------------------------------------
    async def run(self) -> None:
        if self.arrivals is None:
            # Redeliveries can only be of messages not yet acknowledged: a few batches at most.
            window = 4 * self.config.batch_size + 1000
            self.arrivals = Arrivals(self.config.name, self.state_dir, window, redeliveries=not self.config.clean_start)
        await super().run()

    async def session(self) -> None:
        """One broker connection; an error or a lost connection raises, and the broker redelivers what was
        not acknowledged on the next one."""
        connection = _Connection(self, asyncio.get_running_loop())
        try:
            await connection.serve()
        finally:
            connection.close()
            self._pending.clear()
            self._pending_ts.clear()

    def probe_address(self) -> tuple[str, int]:
        return self.config.host, self.config.port

    async def _drain(self, connection: _Connection) -> None:
        """Emit what the reader queued, then acknowledge it, until stop or the connection ends."""
        while not self._stopped.is_set() and not connection.lost:
            self._wakeup.clear()
            while self._pending and not self._stopped.is_set():
                n = self.config.batch_size
                batch, stamps = self._pending[:n], self._pending_ts[:n]
                del self._pending[:n], self._pending_ts[:n]
                records = self._to_records(connection.client, batch, stamps)
                assert self.arrivals is not None
                self.arrivals.write()  # the numbers are on disk before the records can be
                if records:
                    await self.emit(records)
                    self.health.records_read += len(records)
                    self.health.last_record_at_us = records[-1].edge_ts
                if connection.lost:
                    return  # acks would reach no one; the broker redelivers on the next connection
                connection.ack(batch)
                connection.resume_if_room()
                connection.misc()  # also under a steady stream: QoS 0 sends no PUBACK to keep the session alive
            connection.misc()
            if not self._stopped.is_set() and not connection.lost:
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), 1.0)

    def _route(self, topic: str) -> tuple[TopicConfig, JsonMapper | None] | None:
        if topic not in self._routes:
            sub = self.config.topic_for(topic)
            self._routes[topic] = None if sub is None else (sub, self._mappers.get(id(sub)))
        return self._routes[topic]

    def _plan(self, topic: str) -> Any:
        route = self._route(topic)
        return None if route is None else fastjson.plan_for(topic, route[0])

    def _to_records(self, client: mqtt.Client, batch: list[Message], stamps: list[int]) -> list[Record]:
        """Records of every message (`stamps`: their edge_ts), numbered for record_id first; the common JSON
        shape in one loop (fastjson.py), the rest one by one. A message that cannot become records (any
        exception, not only the ones the decoders expect) is rejected alone and still acknowledged, so it can
        never block what follows."""
        arrivals = self.arrivals
        assert arrivals is not None
        ids = arrivals.number_many(batch, "0")  # each message's first record_id (`record_ids`)
        general = functools.partial(self._general, client)
        config = self.config
        return fastjson.convert(
            batch, stamps, ids, self._plans, self._plan, config.name, config.url, _BY_INDEX, general
        )

    def _general(self, client: mqtt.Client, message: Message, edge_ts: int, base: str) -> list[Record]:
        """One message's records the general way (any format and shape), or none if it is rejected."""
        topic, payload = message[0], message[1]
        try:
            converted = self._convert(client, topic, message, edge_ts)
            for record, rid in zip(converted, record_ids(base, len(converted))):
                record.record_id = rid
            return converted
        except MalformedPayload as exc:
            self.reject(f"topic {topic}", str(exc), payload)
        except Exception as exc:  # a decoder bug or a value no one foresaw: still only this message
            self.reject(f"topic {topic}", f"{type(exc).__name__}: {exc}", payload)
        return []

    def _convert(self, client: mqtt.Client, topic: str, message: Message, edge_ts: int) -> list[Record]:
        route = self._route(topic)
        if route is None:
            return []  # a retained/queued message for a topic no longer configured
        sub, mapper = route
        payload = message[1]
        if sub.format == "sparkplugb":
            result = self.sparkplug.decode(topic, payload, edge_ts)
            if result.rebirth_topic and self.config.request_rebirth:
                client.publish(result.rebirth_topic, rebirth_request(), qos=0)
            for reason in result.unsupported:  # the message's other metrics still become records
                self.reject(f"topic {topic}", f"metric {reason}", payload)
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
            attributes=_ATTRIBUTES[message[2], message[4]],
        )
        if mapper is not None:
            return mapper.records(base, payload)
        return raw_records(base, payload)

    async def stop(self) -> None:
        self._stopped.set()
        self._wakeup.set()

    async def test_connection(self) -> str:
        """Connect once (no subscription) and report the broker's answer."""
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[tuple[ReasonCode, mqtt.ConnectFlags | None]] = loop.create_future()
        # Own client id and a clean, non-persistent session: a test must not touch or leave a session.
        probe = self.config.model_copy(
            update={"client_id": f"{self.config.client_id or self.config.name}-test", "clean_start": True}
        )
        client = new_client(probe, batched=False)

        def settle(result: tuple[ReasonCode, mqtt.ConnectFlags | None]) -> None:  # first callback wins
            if not answer.done():
                answer.set_result(result)

        def on_connect(
            _c: mqtt.Client, _u: Any, flags: mqtt.ConnectFlags, reason: ReasonCode, _p: Properties | None
        ) -> None:
            loop.call_soon_threadsafe(settle, (reason, flags))

        def on_disconnect(
            _c: mqtt.Client, _u: Any, _flags: mqtt.DisconnectFlags, reason: ReasonCode, _p: Properties | None
        ) -> None:
            loop.call_soon_threadsafe(settle, (reason, None))

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


class _Connection:
    """One broker connection driven from the event loop: reader callback, writer callback, keepalive."""

    def __init__(self, source: MqttSource, loop: asyncio.AbstractEventLoop):
        self.source, self.loop = source, loop
        self.config = source.config
        self.v5 = self.config.protocol_version == "5"
        self.client: BatchedClient = new_client(self.config)  # type: ignore[assignment]
        self.buffer: PacketBuffer | None = None
        self.fd = -1
        self.lost: str | None = None
        self.paused = False
        self.subscribed = False
        self.started = time.monotonic()
        self.next_misc = self.started + 1
        self._publishes: list[Message] = []

    async def serve(self) -> None:
        client, source = self.client, self.source
        client.on_connect, client.on_disconnect, client.on_message = (
            self._on_connect,
            source._on_disconnect,
            source._on_message,
        )
        # connect() blocks (DNS, TCP, TLS handshake) and writes CONNECT: in a thread, before any callback is set
        await asyncio.to_thread(client.connect, **connect_args(self.config))
        self.buffer = client.buffer
        self.fd = self.buffer.fileno()
        client.on_socket_register_write = lambda *_: self._update_writer()
        client.on_socket_unregister_write = lambda *_: self._update_writer()
        client.on_socket_close = lambda *_: self._forget_socket()
        self.loop.add_reader(self.fd, self._readable)
        self._update_writer()
        await source._drain(self)
        if self.lost and not source._stopped.is_set():
            raise ConnectionError(self.lost)

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: mqtt.ConnectFlags,
        reason: ReasonCode,
        props: Properties | None,
    ) -> None:
        self.source._on_connect(client, userdata, flags, reason, props)
        self.subscribed = not reason.is_failure
        if reason.is_failure:  # first reason wins: the user sees "refused", not the socket closing after it
            self._lose(f"broker refused the connection: {reason}")

    # --- reading -----------------------------------------------------------------------------------------
    def _readable(self) -> None:
        buffer = self.buffer
        if self.lost or buffer is None:
            return
        if not buffer.fill():
            self._lose("the broker closed the connection")
            return
        try:
            self._take()
        except Exception as exc:  # a malformed stream: drop the connection, the broker redelivers
            self._lose(f"{type(exc).__name__}: {exc}")
        if buffer.more_pending() and not self.lost:
            self.loop.call_soon(self._readable)

    def _take(self) -> None:
        buffer, client, out = self.buffer, self.client, self._publishes
        assert buffer is not None
        source = self.source
        while True:
            more = take_publishes(buffer, self.v5, out, source._topics)
            if out:
                source._pending += out
                source._pending_ts += source._stamps(len(out))
                out.clear()
                source._wakeup.set()
            if not more or self.lost:
                break
            rc = client.loop_read()  # exactly one whole packet paho handles itself
            if rc != mqtt.MQTT_ERR_SUCCESS or client.socket() is None:
                self._lose(f"connection lost: {mqtt.error_string(rc)}")
                break
        if len(source._pending) >= self.config.max_pending and not self.paused:
            self.paused = True  # backpressure: stop reading the socket until the emitter catches up
            self.loop.remove_reader(self.fd)

    def resume_if_room(self) -> None:
        if self.paused and not self.lost and len(self.source._pending) < self.config.max_pending // 2:
            self.paused = False
            self.loop.add_reader(self.fd, self._readable)
            self._readable()  # data may have arrived while paused (TLS keeps some out of select's sight)

    # --- writing -----------------------------------------------------------------------------------------
    def ack(self, batch: list[Message]) -> None:
        """PUBACKs in arrival order (as MQTT requires), written in one go; QoS 2 completes through paho."""
        assert self.buffer is not None
        qos = list(map(_QOS, batch))
        if qos.count(1) == len(qos):  # the usual case: one array of PUBACKs, no loop
            self.buffer.queue_acks(pubacks(list(map(_MID, batch))))
        else:
            mids: list[int] = []
            for message in batch:
                if message[2] == 1:
                    mids.append(message[3])
                elif message[2] == 2:
                    self.buffer.queue_acks(pubacks(mids))
                    mids = []
                    self.client.ack(message[3], 2)
            if mids:
                self.buffer.queue_acks(pubacks(mids))
        self._update_writer()

    def _update_writer(self) -> None:
        if self.fd < 0 or self.lost or self.buffer is None:
            return
        if self.buffer.out or self.client.want_write():
            self.loop.add_writer(self.fd, self._writable)
        else:
            self.loop.remove_writer(self.fd)

    def _writable(self) -> None:
        try:
            self._write()
        except OSError as exc:
            self._lose(f"connection lost while writing: {exc}")

    def _write(self) -> None:
        flushed = self.buffer is not None and self.buffer.flush()
        if flushed and self.client.want_write() and self.client.loop_write() != mqtt.MQTT_ERR_SUCCESS:
            self._lose("connection lost while writing")
            return
        self._update_writer()

    def misc(self) -> None:
        """Keepalive (PINGREQ, ping timeout) about once a second; a missing CONNACK ends the connection."""
        now = time.monotonic()
        if now < self.next_misc or self.lost:
            return
        self.next_misc = now + 1
        if self.client.loop_misc() != mqtt.MQTT_ERR_SUCCESS or self.client.socket() is None:
            self._lose("no answer from the broker within the keepalive")
        elif not self.subscribed and now - self.started > self.config.keepalive_s + 10:
            self._lose("the broker did not accept the connection in time")

    # --- ending ------------------------------------------------------------------------------------------
    def _lose(self, reason: str) -> None:
        if not self.lost:
            self.lost = reason
            self._forget_socket()
            self.source._wakeup.set()

    def _forget_socket(self) -> None:
        if self.fd >= 0:
            self.loop.remove_reader(self.fd)
            self.loop.remove_writer(self.fd)
            self.fd = -1

    def close(self) -> None:
        """DISCONNECT if the connection is still up (a clean end keeps a persistent session), then close."""
        sock = self.client.socket()
        self._forget_socket()
        if sock is None or self.buffer is None:
            return
        with contextlib.suppress(Exception):
            if not self.lost:
                self.buffer.flush()
                self.client.disconnect()
                self.client.loop_write()
        with contextlib.suppress(Exception):
            self.buffer.close()
