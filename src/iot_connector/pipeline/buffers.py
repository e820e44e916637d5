"""The two buffers between sources and the sink, with the drop policy applied when they are full.

`SpoolBuffer` (default) writes every record to the durable spool before the source is acknowledged.
`MemoryBuffer` (spool disabled) is a bounded deque: faster, but a crash loses what it holds.
Both hand out batches in arrival order and forget them only on `commit`, after the sink acknowledged.
"""

from __future__ import annotations

import abc
import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from iot_connector.model import Record
from iot_connector.pipeline.spool import Spool


@dataclass
class PutResult:
    accepted: int
    dropped_newest: int = 0
    dropped_oldest: int = 0
    invalid: list[tuple[str, str]] | None = None  # (source, why) of records refused as unencodable


class Buffer(abc.ABC):
    durable = False  # True: what is accepted survives a crash, so stop need not wait for the sink

    def __init__(self, drop_policy: str):
        self.drop_policy = drop_policy
        self._space = asyncio.Event()
        self._arrival: asyncio.Future[None] | None = None

    @abc.abstractmethod
    async def put(self, records: Sequence[Record]) -> PutResult:
        """Accept records (durably for the spool), or drop/block per the policy when full."""

    @abc.abstractmethod
    def read(self, max_records: int) -> tuple[list[Record], Any]:
        """The next records in order and a token to `commit` once the sink acknowledged them."""

    @abc.abstractmethod
    def commit(self, token: Any) -> None: ...

    @property
    @abc.abstractmethod
    def pending(self) -> int:
        """Records waiting to be read."""

    @property
    @abc.abstractmethod
    def depth(self) -> int:
        """Records not yet acknowledged by the sink."""

    @property
    def size_bytes(self) -> int:
        return 0

    async def open(self) -> None:
        return None

    async def close(self) -> None:
        self._space.set()

    def arrival(self) -> asyncio.Future[None]:
        """A future the next put of records (or `wake`) resolves: what the batcher waits on."""
        if self._arrival is None or self._arrival.done():
            self._arrival = asyncio.get_running_loop().create_future()
        return self._arrival

    def wake(self) -> None:
        if self._arrival is not None and not self._arrival.done():
            self._arrival.set_result(None)

    async def _wait_space(self) -> None:
        self._space.clear()
        await self._space.wait()

    def _freed(self) -> None:
        self._space.set()


class MemoryBuffer(Buffer):
    def __init__(self, max_records: int, drop_policy: str):
        super().__init__(drop_policy)
        self.max_records = max_records
        self._queue: deque[Record] = deque()
        self._inflight = 0

    @property
    def pending(self) -> int:
        return len(self._queue)

    @property
    def depth(self) -> int:
        return len(self._queue) + self._inflight

    async def put(self, records: Sequence[Record]) -> PutResult:
        """Records that fit no column are refused here, as by the spool: in the queue they would fail every
        sink write and block everything behind them. The encoding is kept on the record (ZeroBus sends it)."""
        records, _, invalid = _encoded(records)
        result = PutResult(accepted=0, invalid=invalid)
        for record in records:
            while self.depth >= self.max_records:
                if self.drop_policy == "block":
                    self.wake()  # what was queued so far can go out meanwhile
                    await self._wait_space()
                elif self.drop_policy == "oldest" and self._queue:
                    self._queue.popleft()
                    result.dropped_oldest += 1
                else:  # newest, or oldest while everything left is in flight to the sink
                    break
            if self.depth >= self.max_records:
                result.dropped_newest += 1
                continue
            self._queue.append(record)
            result.accepted += 1
        if result.accepted:
            self.wake()
        return result

    def read(self, max_records: int) -> tuple[list[Record], int]:
        n = min(max_records, len(self._queue))
        out = [self._queue.popleft() for _ in range(n)]
        self._inflight += n
        return out, n

    def commit(self, token: int) -> None:
        self._inflight -= token
        self._freed()


class SpoolBuffer(Buffer):
    durable = True

    def __init__(self, spool: Spool, drop_policy: str):
        super().__init__(drop_policy)
        self.spool = spool

    @property
    def pending(self) -> int:
        return self.spool.pending

    @property
    def depth(self) -> int:
        return self.spool.depth

    @property
    def size_bytes(self) -> int:
        return self.spool.size_bytes

    async def open(self) -> None:
        self.spool.open()
        await super().open()

    async def close(self) -> None:
        await super().close()
        await self.spool.close()

    async def put(self, records: Sequence[Record]) -> PutResult:
        records, payloads, invalid = _encoded(records)
        need = self.spool.frames_size(payloads)
        result = PutResult(accepted=len(records), invalid=invalid)
        if need > self.spool.max_bytes:
            return PutResult(accepted=0, dropped_newest=len(records), invalid=invalid)
        while not self.spool.has_room(need):
            self.spool.reclaim()
            if self.spool.has_room(need):
                break
            if self.drop_policy == "block":
                await self._wait_space()
            elif self.drop_policy == "oldest":
                result.dropped_oldest += self.spool.drop_oldest_segment()
            else:
                return PutResult(accepted=0, dropped_newest=len(records), invalid=invalid)
        if not records:
            return result
        self.spool.append(records, payloads)
        self.wake()
        await self.spool.wait_durable()
        return result

    def read(self, max_records: int) -> tuple[list[Record], Any]:
        return self.spool.read(max_records)

    def commit(self, token: Any) -> None:
        self.spool.commit_soon(token)
        self._freed()


def _encoded(records: Sequence[Record]) -> tuple[Sequence[Record], list[bytes], list[tuple[str, str]] | None]:
    """The records that encode, their spool payloads, and (source, error) of those that do not (or None)."""
    try:
        return records, Spool.encode(records), None
    except ValueError:  # a value that fits no column: refuse that record only, keep the others
        pass
    kept: list[Record] = []
    payloads: list[bytes] = []
    errors: list[tuple[str, str]] = []
    for record in records:
        try:
            payloads.append(Spool.encode([record])[0])
        except ValueError as exc:
            errors.append((str(record.source_id), str(exc)))
        else:
            kept.append(record)
    return kept, payloads, errors
