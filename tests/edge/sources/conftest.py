"""The plant OPC UA server the OPC UA test modules share: one per module (its init takes seconds), on the
module's own event loop (those modules set `pytest.mark.asyncio(loop_scope="module")`)."""

from __future__ import annotations

import pytest_asyncio

from tests.edge.sources.helpers import free_port
from tests.edge.sources.opcua_server import PlantServer


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plant():
    server = await PlantServer(free_port()).start()
    yield server
    await server.stop()
