"""Protocol peers for the GUI tests, each in its own thread and event loop (the GUI runs as a process and the
browser test is synchronous): a pymodbus TCP server and the asyncua plant server of the source tests."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Awaitable, Callable

from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusTcpServer

from tests.edge.sources.helpers import free_port
from tests.edge.sources.opcua_server import PlantServer

MODBUS_REGISTERS = [1234, 42]


class ThreadedPeer:
    """Runs `start()` then waits; `__exit__` runs `stop()` in the same loop. Subclasses set both."""

    def __init__(self) -> None:
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self.loop.run_until_complete, args=(self._main(),), daemon=True)

    async def start(self) -> Callable[[], Awaitable[None]]:
        """Start serving; return the coroutine function that stops it."""
        raise NotImplementedError

    async def _main(self) -> None:
        self.stopping = asyncio.Event()
        try:
            stop = await self.start()
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            return
        self.ready.set()
        await self.stopping.wait()
        await stop()

    def __enter__(self):
        self.thread.start()
        assert self.ready.wait(20), f"{type(self).__name__} did not start within 20 s"
        if self.error:
            raise self.error
        return self

    def __exit__(self, *_exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(10)


class ModbusPeer(ThreadedPeer):
    """Holding registers 0..1 = MODBUS_REGISTERS, unit 1."""

    async def start(self) -> Callable[[], Awaitable[None]]:
        device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, MODBUS_REGISTERS))  # block at 1 = address 0
        server = ModbusTcpServer(
            ModbusServerContext(devices={1: device}, single=False), address=("127.0.0.1", self.port)
        )
        task = asyncio.create_task(server.serve_forever())
        await asyncio.sleep(0.1)

        async def stop() -> None:
            await server.shutdown()
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

        return stop


class OpcuaPeer(ThreadedPeer):
    def __init__(self, users: dict[str, str] | None = None) -> None:
        super().__init__()
        self.users = users

    async def start(self) -> Callable[[], Awaitable[None]]:
        self.plant = await PlantServer(self.port, users=self.users).start()
        return self.plant.stop


class Listener:
    """A TCP listener on 127.0.0.1 that records every connection and every byte sent to it, answering
    nothing: the stand-in for an attacker's server a stored secret must never reach."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.2)
        self.port = self.server.getsockname()[1]
        self.connections = 0
        self.received = b""
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _addr = self.server.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.settimeout(0.5)
            with conn, contextlib.suppress(OSError):
                while chunk := conn.recv(65536):
                    self.received += chunk

    def __enter__(self) -> Listener:
        self.thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self.thread.join(5)
        self.server.close()
