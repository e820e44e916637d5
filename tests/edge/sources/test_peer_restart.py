"""Each real peer restarted under load: data flows again within RESUME_S of the peer being reachable again.

The outage (OUTAGE_S, as in the report behind this test) is long enough for the backoff to reach its cap, and
every source runs with the default reconnect settings: the target holds for what users get out of the box.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import paho.mqtt.client as mqtt
import pytest
from asyncua import ua
from asyncua.common.utils import ServiceError
from paho.mqtt.enums import CallbackAPIVersion
from pymodbus.server import ModbusSerialServer

from iot_connector.sources.base import SourceConfig
from iot_connector.sources.modbus import ModbusConfig, ModbusSource
from iot_connector.sources.mqtt import MqttConfig, MqttSource
from iot_connector.sources.opcua import OpcuaConfig, OpcuaSource
from tests.edge.sources.helpers import Collector, free_port, running
from tests.edge.sources.mosquitto import Mosquitto
from tests.edge.sources.opcua_server import PlantServer, node_id
from tests.edge.sources.test_modbus import build_device, context, tcp_server

pytestmark = [pytest.mark.integration, pytest.mark.slow]

OUTAGE_S = 6.0
RESUME_S = 5.0  # the target: data flowing again within this of the peer being reachable again


def test_the_defaults_keep_the_backoff_under_the_target() -> None:
    defaults = SourceConfig.model_fields
    assert defaults["reconnect_max_delay_s"].default <= 3.0
    assert defaults["reconnect_min_delay_s"].default <= defaults["reconnect_max_delay_s"].default


async def resumed_within(collector: Collector, before: int, back_at: float, what: str) -> float:
    """Seconds from `back_at` until a record beyond the first `before` arrived; fails beyond RESUME_S."""
    loop = asyncio.get_running_loop()
    while len(collector.records) <= before:
        if loop.time() - back_at > RESUME_S + 5:
            break
        await asyncio.sleep(0.01)
    took = loop.time() - back_at
    assert len(collector.records) > before, f"{what}: no data {took:.1f}s after the peer was back"
    print(f"{what}: data again {took:.2f}s after the peer was back")  # shown with -s
    assert took < RESUME_S, f"{what}: data flowed again {took:.2f}s after the peer was back (target {RESUME_S}s)"
    return took


class MqttLoad(threading.Thread):
    """Publishes QoS 1 JSON readings as fast as the broker takes them (paho's own thread), until `done`."""

    def __init__(self, port: int, topic: str):
        super().__init__(daemon=True)
        self.port, self.topic = port, topic
        self.done = threading.Event()
        self.sent = 0

    def run(self) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
        client.connect("127.0.0.1", self.port)
        client.loop_start()
        try:
            while not self.done.is_set():
                info = client.publish(self.topic, orjson.dumps({"v": self.sent}), qos=1)
                if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_NO_CONN:
                    break
                self.sent += 1
                time.sleep(0.001)
        finally:
            client.disconnect()
            client.loop_stop()


async def test_mosquitto_restart(tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path).start()
    collector = Collector()
    source = MqttSource(
        MqttConfig(name="mq", url=broker.url, topics=[{"topic": "plant/#", "value_path": "v"}]), collector
    )
    load = MqttLoad(broker.port, "plant/line1")
    try:
        async with running(source):
            load.start()
            await collector.wait_for(lambda recs: len(recs) >= 500)
            broker.stop()
            load.done.set()
            load.join(10)
            await asyncio.sleep(OUTAGE_S)
            before = len(collector.records)
            broker.start()
            back_at = asyncio.get_running_loop().time()
            load = MqttLoad(broker.port, "plant/line1")
            load.start()
            await resumed_within(collector, before, back_at, "mosquitto")
    finally:
        load.done.set()
        broker.stop()
    assert source.health.reconnects == 1  # one successful reconnect, however many probes it took
    assert source.health.connect_attempts >= 2


async def _opcua_restart(
    plant: PlantServer, cfg: OpcuaConfig, restarted: Callable[[PlantServer], None] = lambda _: None
) -> OpcuaSource:
    """Stop the server under load for OUTAGE_S, start it again (then call `restarted`), and check data resumes."""
    collector = Collector()
    source = OpcuaSource(cfg, collector)
    stop_writing = asyncio.Event()

    async def write_forever() -> None:  # the load: a value change every 10 ms while the server is up
        n = 0
        while not stop_writing.is_set():
            if plant.server is not None:
                n += 1
                await plant.write("Temperature", float(n))
            await asyncio.sleep(0.01)

    async with running(source):
        writer = asyncio.create_task(write_forever())
        try:
            await collector.wait_for(lambda recs: len(recs) >= 50)
            stop_writing.set()
            await writer
            await plant.stop()
            await asyncio.sleep(OUTAGE_S)
            before = len(collector.records)
            await plant.start()
            restarted(plant)
            back_at = asyncio.get_running_loop().time()
            stop_writing.clear()
            writer = asyncio.create_task(write_forever())
            await resumed_within(collector, before, back_at, "asyncua server")
        finally:
            stop_writing.set()
            await writer
    return source


# Failed once in three fresh-clone CI runs of session 8: asyncua's resume hung, it never reported CONNECTED,
# so the Publish check never ran. Fixed (`_check_resume`; made deterministic below, in
# test_asyncua_server_restart_with_asyncuas_resume_hung). The re-runs stay until fresh-clone runs show no
# other way for this natural restart to fail.
@pytest.mark.flaky(reruns=2)
async def test_asyncua_server_restart() -> None:
    plant = await PlantServer(free_port()).start()
    try:
        cfg = OpcuaConfig(
            name="opc", endpoint=plant.endpoint, publishing_interval_ms=50, nodes=[node_id("Temperature")]
        )
        source = await _opcua_restart(plant, cfg)
    finally:
        await plant.stop()
    assert source.health.reconnects == 1


def refuse_first_subscription(plant: PlantServer) -> None:
    """The restarted server refuses the first CreateSubscription (BadTooManySubscriptions, as a server at its
    limit or still starting up would). asyncua's own reconnect reaches the server first: it then reports
    CONNECTED with no subscription behind it (its restore failed), and nothing it does re-creates one."""
    assert plant.server is not None
    service = plant.server.iserver.subscription_service
    create = service.create_subscription
    refused: list[object] = []

    async def refuse_once(*args, **kwargs):
        if not refused:
            refused.append(args)
            raise ServiceError(ua.StatusCodes.BadTooManySubscriptions)
        return await create(*args, **kwargs)

    service.create_subscription = refuse_once  # type: ignore[method-assign]


async def test_asyncua_server_restart_with_the_restored_subscription_refused(caplog) -> None:
    """The dead-subscription state after asyncua's own reconnect, made deterministic: the source must notice
    that no Publish response comes, drop the session and subscribe again on a new one, within the target."""
    plant = await PlantServer(free_port()).start()
    try:
        cfg = OpcuaConfig(
            name="opc", endpoint=plant.endpoint, publishing_interval_ms=50, nodes=[node_id("Temperature")]
        )
        with caplog.at_level(logging.WARNING, logger="iot_connector.sources"):
            source = await _opcua_restart(plant, cfg, restarted=refuse_first_subscription)
    finally:
        await plant.stop()
    assert source.health.reconnects == 1  # the fresh session, once the resumed one proved dead
    dropped = [r.getMessage() for r in caplog.records if "no Publish response" in r.getMessage()]
    assert dropped, "the dropped session was not logged at WARNING"
    assert source.health.details["silent_subscriptions"] == "1"


def _modbus_config(url: str, tags: list[dict]) -> ModbusConfig:
    return ModbusConfig(name="plc", url=url, poll_interval_s=0.05, registers=tags)


async def test_pymodbus_tcp_server_restart() -> None:
    regs, tags, _ = build_device()
    port = free_port()
    collector = Collector()
    source = ModbusSource(_modbus_config(f"modbus+tcp://127.0.0.1:{port}", tags), collector)
    async with running(source):
        async with tcp_server(regs, port):
            await collector.wait_for(lambda recs: len(recs) >= 5 * len(tags))
        await asyncio.sleep(OUTAGE_S)
        before = len(collector.records)
        async with tcp_server(regs, port):  # listening when the block is entered
            back_at = asyncio.get_running_loop().time() - 0.1  # tcp_server waits 0.1 s after it listens
            await resumed_within(collector, before, back_at, "pymodbus TCP server")
    assert source.health.reconnects == 1


async def test_pymodbus_rtu_device_restart(pty_pair) -> None:
    server_tty, client_tty = pty_pair
    regs, tags, _ = build_device()
    collector = Collector()
    source = ModbusSource(_modbus_config(f"modbus+rtu://{client_tty}", tags[:4]), collector)

    async def device() -> tuple[ModbusSerialServer, asyncio.Task]:
        server = ModbusSerialServer(context(regs), port=server_tty, baudrate=19200, parity="N", stopbits=1)
        return server, asyncio.create_task(server.serve_forever())

    async def unplug(server: ModbusSerialServer, task: asyncio.Task) -> None:
        await server.shutdown()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    async with running(source):
        server, task = await device()
        await collector.wait_for(lambda recs: len(recs) >= 20, timeout=20)
        await unplug(server, task)
        await asyncio.sleep(OUTAGE_S)
        before = len(collector.records)
        server, task = await device()
        back_at = asyncio.get_running_loop().time()
        try:
            await resumed_within(collector, before, back_at, "pymodbus RTU device")
        finally:
            await unplug(server, task)
    assert source.health.reconnects == 1


def hang_the_next_resume(monkeypatch: pytest.MonkeyPatch) -> Callable[[PlantServer], None]:
    """asyncua's next resume attempt after the restart never returns (as one that hit the server mid-start-up
    did in CI): asyncua stays RECONNECTING while the server answers again."""

    def restarted(plant: PlantServer) -> None:
        from asyncua import Client

        resume = Client._try_reactivate_existing_session
        hung: list[bool] = []

        async def hang_once(self: Client) -> bool:
            if not hung:
                hung.append(True)
                await asyncio.Event().wait()  # never set
            return await resume(self)

        monkeypatch.setattr(Client, "_try_reactivate_existing_session", hang_once)

    return restarted


async def test_asyncua_server_restart_with_asyncuas_resume_hung(monkeypatch, caplog) -> None:
    """The source sees the server accept connections again while asyncua is still resuming, gives asyncua
    its longest wait plus an attempt, then opens a new session itself."""
    plant = await PlantServer(free_port()).start()
    try:
        cfg = OpcuaConfig(
            name="opc", endpoint=plant.endpoint, publishing_interval_ms=50, nodes=[node_id("Temperature")]
        )
        with caplog.at_level(logging.WARNING, logger="iot_connector.sources"):
            source = await _opcua_restart(plant, cfg, restarted=hang_the_next_resume(monkeypatch))
    finally:
        await plant.stop()
    assert source.health.reconnects == 1  # the new session
    assert any("asyncua has not resumed the session" in r.getMessage() for r in caplog.records)
