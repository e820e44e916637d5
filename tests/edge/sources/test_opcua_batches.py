"""OPC UA subscriptions handled one whole DataChangeNotification at a time (`whole_notifications`), against a
real asyncua Server: nothing lost or reordered in a burst, and the hook stays wired into asyncua's own
publish path (so an asyncua upgrade that renames it fails here, not silently in production)."""

from __future__ import annotations

import asyncio

import pytest
from asyncua import Client, ua

from iot_connector.compat.asyncua import DataChangeBatch, whole_notifications
from iot_connector.sources.opcua import OpcuaSource
from tests.edge.sources.helpers import Collector, running
from tests.edge.sources.opcua_server import node_id
from tests.edge.sources.opcua_server import source_config as config

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="module")]


async def test_a_burst_of_changes_arrives_complete_and_in_order_per_node(plant):
    names = ["Temperature", "Motor.Speed"]
    cfg = config(plant.endpoint, nodes=[node_id(n) for n in names], monitoring={"queue_size": 500})
    collector = Collector()
    async with running(OpcuaSource(cfg, collector)):
        await collector.wait_for(lambda recs: len(recs) >= 2)  # the initial values: subscribed
        collector.records.clear()
        written = [float(i) for i in range(1, 201)]
        for value in written:
            for name in names:
                await plant.write(name, value)
        await collector.wait_for(lambda recs: len(recs) >= 2 * len(written))
        await asyncio.sleep(0.2)  # a duplicate would show up here
    for name in names:
        got = [r.value_double for r in collector.records if r.tag_id == node_id(name)]
        assert got == written, name


async def test_the_hook_receives_asyncuas_publish_results_and_keeps_the_replayed_flag(plant):
    async with Client(plant.endpoint) as client:
        sub = await client.create_subscription(1000)
        whole_notifications(sub)
        handle = 4242
        items = [ua.MonitoredItemNotification(ClientHandle=handle, Value=ua.DataValue(ua.Variant(1.5)))]
        result = ua.PublishResult()
        result.NotificationMessage.NotificationData = [ua.DataChangeNotification(MonitoredItems=items)]
        sub._replaying = True  # what asyncua sets while it replays Republish results after a reconnect
        await sub.publish_callback(result)
        sub._replaying = False
        await sub.publish_callback(result)
        first, second = await anext(sub), await anext(sub)
        await sub.delete()
    assert (type(first), type(second)) == (DataChangeBatch, DataChangeBatch)
    assert (first.replayed, second.replayed) == (True, False)
    assert [i.ClientHandle for i in first.items] == [handle]
