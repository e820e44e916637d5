"""Shared by the source tests: a list-collecting emit, free ports, bounded waits."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable, Sequence

from iot_connector.model import Record
from iot_connector.sources.base import Source


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Collector:
    """The simplest emit: keeps every record; `wait_for` polls until a predicate holds or times out."""

    def __init__(self) -> None:
        self.records: list[Record] = []
        self.calls = 0

    async def __call__(self, records: Sequence[Record]) -> None:
        self.calls += 1
        self.records.extend(records)

    async def wait_for(self, predicate: Callable[[list[Record]], bool], timeout: float = 10.0) -> list[Record]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not predicate(self.records):
            if loop.time() > deadline:
                raise AssertionError(f"condition not met in {timeout}s; got {len(self.records)} records")
            await asyncio.sleep(0.02)
        return self.records

    def by_tag(self) -> dict[str, Record]:
        """The latest record per tag_path (or tag_id when no path)."""
        return {r.tag_path or r.tag_id: r for r in self.records}


class FailsOnce(Collector):
    """An emit whose first call raises (a pipeline refusing a batch); later calls collect."""

    def __init__(self) -> None:
        super().__init__()
        self.failed = False

    async def __call__(self, records: Sequence[Record]) -> None:
        if not self.failed:
            self.failed = True
            raise RuntimeError("pipeline refused the batch")
        await super().__call__(records)


@contextlib.asynccontextmanager
async def running(source: Source) -> AsyncIterator[asyncio.Task]:
    """Run a source in a task; stop it and wait for `run` to return on exit (bounded)."""
    task = asyncio.create_task(source.run())
    try:
        yield task
    finally:
        await source.stop()
        try:
            await asyncio.wait_for(task, 10)
        except asyncio.TimeoutError:
            task.cancel()
            raise
