"""OPC UA source against a real asyncua Server on 127.0.0.1 (plain and Basic256Sha256 with trust lists)."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest
import pytest_asyncio

from iot_connector.sources.opcua import OpcuaSource
from tests.edge.sources.helpers import Collector, FailsOnce, free_port, running
from tests.edge.sources.opcua_server import PLANT, VALUES, PlantServer, node_id
from tests.edge.sources.opcua_server import source_config as config

# One event loop for the module so one server (its init takes seconds) serves the read-mostly tests.
pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


@pytest_asyncio.fixture(loop_scope="module")
async def own_plant():
    """A server this test may stop and restart."""
    server = await PlantServer(free_port()).start()
    yield server
    await server.stop()


def latest(collector: Collector, tag_id: str):
    return next((r for r in reversed(collector.records) if r.tag_id == tag_id), None)


async def test_subscription_delivers_values_with_timestamps_status_and_stable_ids(plant):
    collector = Collector()
    cfg = config(plant.endpoint, monitoring={"sampling_interval_ms": 20})
    async with running(OpcuaSource(cfg, collector)):
        await collector.wait_for(lambda recs: len(recs) >= 1)
        for value in (1.0, 2.0, 3.0):
            await plant.write("Temperature", value)
            await asyncio.sleep(0.1)
        await collector.wait_for(lambda recs: recs[-1].value_double == 3.0)
    rec = collector.records[-1]
    assert rec.tag_id == node_id("Temperature")
    assert (rec.tag_path, rec.data_type, rec.quality, rec.status_code) == ("Temperature", "Double", "GOOD", 0)
    now = dt.datetime.now(dt.timezone.utc).timestamp() * 1e6
    assert abs(rec.source_ts - now) < 30e6
    assert abs(rec.server_ts - now) < 30e6
    assert [r.value_double for r in collector.records][-3:] == [1.0, 2.0, 3.0]


async def test_poll_mode_reads_every_type(plant):
    collector = Collector()
    cfg = config(plant.endpoint, mode="poll", poll_interval_s=0.1, nodes=[node_id(n) for n in VALUES])
    async with running(OpcuaSource(cfg, collector)):
        await collector.wait_for(lambda recs: len({r.tag_id for r in recs}) == len(VALUES))
    got = {r.tag_path: r for r in collector.records}
    assert got["Temperature"].data_type == "Double"  # its value is written by other tests
    assert (got["Count"].value_long, got["Count"].data_type) == (-42, "Int32")
    assert got["Total"].value_long == 2**40 + 3
    assert got["Running"].value_bool is True
    assert got["Label"].value_string == "batch-7"
    assert got["Ratio"].value_double == 0.25
    assert got["Started"].value_long == int(VALUES["Started"][0].timestamp() * 1_000_000)
    assert got["Profile"].value_raw == "[1.0,2.0,3.5]"
    assert all(r.quality == "GOOD" for r in got.values())


async def test_absolute_deadband_filters_small_changes(plant):
    collector = Collector()
    nodes = [{"id": node_id("Level"), "deadband_type": "absolute", "deadband_value": 5, "sampling_interval_ms": 10}]
    async with running(OpcuaSource(config(plant.endpoint, nodes=nodes), collector)):
        await collector.wait_for(lambda recs: len(recs) >= 1)  # initial value 20.5
        for value in (21.0, 22.0, 30.0, 31.0, 40.0):
            await plant.write("Level", value)
            await asyncio.sleep(0.1)
        await collector.wait_for(lambda recs: recs[-1].value_double == 40.0)
    assert [r.value_double for r in collector.records] == [20.5, 30.0, 40.0]


async def test_browse_discovery_and_browse_helper(plant):
    collector = Collector()
    browse = {"root": f"nsu={PLANT};s=Line1", "depth": 2, "filter": "Motor/*"}
    cfg = config(plant.endpoint, nodes=[node_id("Count")], browse=browse, mode="poll", poll_interval_s=0.1)
    source = OpcuaSource(cfg, collector)
    async with running(source):
        await collector.wait_for(lambda recs: len({r.tag_id for r in recs}) >= 2)
    assert {r.tag_id for r in collector.records} == {node_id("Count"), node_id("Motor.Speed")}
    assert latest(collector, node_id("Motor.Speed")).tag_path == "Motor/Speed"
    entries = await source.browse(f"nsu={PLANT};s=Line1", depth=1)
    assert {"id": node_id("Motor"), "path": "Motor", "node_class": "Object"} in entries
    assert {"id": node_id("Label"), "path": "Label", "node_class": "Variable"} in entries


@pytest.mark.slow
@pytest.mark.parametrize("extra_namespaces", [0, 2], ids=["same-namespaces", "namespace-index-moves"])
async def test_server_restart_resumes_the_subscription(own_plant, extra_namespaces):
    plant = own_plant
    collector = Collector()
    source = OpcuaSource(config(plant.endpoint, monitoring={"sampling_interval_ms": 20}), collector)
    async with running(source):
        await plant.write("Temperature", 1.0)
        await collector.wait_for(lambda recs: any(r.value_double == 1.0 for r in recs))
        await plant.stop()
        await collector.wait_for(lambda _: not source.health.connected, timeout=15)
        await plant.start(extra_namespaces=extra_namespaces)  # with 2, "urn:test:plant" gets another index
        assert (plant.idx != 2) == bool(extra_namespaces)
        for attempt in range(300):
            await plant.write("Temperature", 100.0 + attempt)
            await asyncio.sleep(0.1)
            if any(r.value_double and r.value_double >= 100.0 for r in collector.records):
                break
        else:
            raise AssertionError(f"no value after the restart: {source.health}")
    assert latest(collector, node_id("Temperature")).value_double >= 100.0
    assert source.health.reconnects >= 1


async def test_a_subscription_the_server_drops_is_noticed_and_subscribed_again(own_plant):
    """No restart, no lost connection: the server deletes the subscription (as one does whose lifetime ran out).
    asyncua stays CONNECTED and its Publish requests get no answer; the source must notice the silence
    (no data, no keep-alive) and subscribe again, within the 5 s target."""
    plant = own_plant
    collector = Collector()
    source = OpcuaSource(config(plant.endpoint, monitoring={"sampling_interval_ms": 20}), collector)
    loop = asyncio.get_running_loop()
    async with running(source):
        await plant.write("Temperature", 1.0)
        await collector.wait_for(lambda recs: any(r.value_double == 1.0 for r in recs))
        service = plant.server.iserver.subscription_service
        assert await service.delete_subscriptions(list(service.subscriptions))
        dropped_at = loop.time()
        for attempt in range(100):
            await plant.write("Temperature", 100.0 + attempt)
            await asyncio.sleep(0.1)
            if any(r.value_double and r.value_double >= 100.0 for r in collector.records):
                break
        took = loop.time() - dropped_at
    assert latest(collector, node_id("Temperature")).value_double >= 100.0, f"no data after {took:.1f}s"
    assert took < 5.0, f"data again only {took:.1f}s after the server dropped the subscription"
    assert source.health.details["silent_subscriptions"] == "1"  # noticed once, logged at WARNING
    assert source.health.reconnects == 1  # on a new session


async def test_a_blocked_event_loop_is_not_taken_for_a_silent_subscription(plant):
    """Answers that wait unread while the loop was blocked (a long synchronous step) do not drop the session."""
    collector = Collector()
    source = OpcuaSource(config(plant.endpoint), collector)
    async with running(source):
        await collector.wait_for(lambda recs: len(recs) >= 1)
        await asyncio.sleep(0.5)
        time.sleep(2.0)  # blocks the loop: no Publish answer can be read meanwhile
        await asyncio.sleep(1.0)
        await plant.write("Temperature", 7.5)
        await collector.wait_for(lambda recs: recs[-1].value_double == 7.5)
    assert "silent_subscriptions" not in source.health.details
    assert source.health.reconnects == 0


async def test_unknown_node_and_unknown_namespace_give_clear_errors_without_crashing(plant):
    collector = Collector()
    nodes = [node_id("Temperature"), f"nsu={PLANT};s=Nope"]
    async with running(OpcuaSource(config(plant.endpoint, nodes=nodes), collector)):
        await collector.wait_for(lambda recs: {r.tag_id for r in recs} == set(nodes))
    bad = latest(collector, f"nsu={PLANT};s=Nope")
    assert (bad.quality, bad.status_code) == ("BAD", 0x80340000)  # BadNodeIdUnknown
    missing = OpcuaSource(config(plant.endpoint, nodes=["nsu=urn:nowhere;s=X"]), Collector())
    async with running(missing):
        for _ in range(100):
            if missing.health.last_error:
                break
            await asyncio.sleep(0.05)
    assert "has no namespace 'urn:nowhere'" in missing.health.last_error
    with pytest.raises(ValueError, match="urn:nowhere"):
        await missing.test_connection()


async def test_unreachable_server_is_a_clear_connection_error():
    source = OpcuaSource(config(f"opc.tcp://127.0.0.1:{free_port()}/x"), Collector())
    with pytest.raises(ConnectionError, match=r"cannot connect to opc\.tcp://127\.0\.0\.1"):
        await source.test_connection()


async def test_an_emit_failure_is_reported_and_the_source_goes_on(plant):
    collector = fails_once = FailsOnce()

    source = OpcuaSource(
        config(plant.endpoint, nodes=[node_id("Label")], mode="poll", poll_interval_s=0.05), fails_once
    )
    async with running(source):
        await collector.wait_for(lambda recs: len(recs) >= 1)
    assert source.health.reconnects == 1
    assert collector.records[0].value_string == "batch-7"
