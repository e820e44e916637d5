"""Shared by the source tests: the plant OPC UA server the OPC UA test modules share, one per module (its init
takes seconds), on the module's own event loop (those modules set `pytest.mark.asyncio(loop_scope="module")`);
the socat pty pair of the Modbus RTU tests."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import pytest_asyncio

from tests.edge.sources.helpers import free_port
from tests.edge.sources.opcua_server import PlantServer


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plant():
    server = await PlantServer(free_port()).start()
    yield server
    await server.stop()


@pytest.fixture
def pty_pair(tmp_path: Path):
    """Two linked ptys (socat): the device side and the agent side of a serial line."""
    if not shutil.which("socat"):
        pytest.fail(
            "socat is not installed: run `bash tools/system-deps.sh` (it apt-get installs socat)", pytrace=False
        )
    server_tty, client_tty = tmp_path / "ttySRV", tmp_path / "ttyCLI"
    proc = subprocess.Popen(
        ["socat", "-d", "-d", f"pty,raw,echo=0,link={server_tty}", f"pty,raw,echo=0,link={client_tty}"],
        stderr=subprocess.PIPE,
    )
    for _ in range(100):
        if server_tty.exists() and client_tty.exists():
            break
        time.sleep(0.05)
    yield str(server_tty), str(client_tty)
    proc.terminate()
    proc.wait(5)
