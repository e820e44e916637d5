"""Shared test helpers for the edge pipeline: records with a known order, a sink that fails on demand, and a
Delta table the blind appender declines."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from deltalake import DeltaTable

from iot_connector.model import RECORD_SCHEMA, Record
from iot_connector.sinks.base import Sink, SinkError


def make_records(n: int, start: int = 0, tags: int = 3, source: str = "plc1") -> list[Record]:
    """Records whose `seq` counts up per source; tag = seq % tags, so order per tag is checkable."""
    return [
        Record(
            source_id=source,
            protocol="modbus",
            endpoint="modbus+tcp://127.0.0.1:502/1",
            tag_id=f"hr:{seq % tags}",
            data_type="float32",
            value_double=float(seq),
            seq=seq,
            source_ts=1_700_000_000_000_000 + seq,
            attributes={"unit_id": "1"},
        )
        for seq in range(start, start + n)
    ]


class RecordingSink(Sink):
    """Keeps every acknowledged batch; `fail_next` failures (retriable unless told) before succeeding."""

    name = "recording"

    def __init__(self) -> None:
        self.batches: list[list[Record]] = []
        self.fail_next = 0
        self.retriable = True
        self.attempts = 0
        self.gate: asyncio.Event | None = None  # when set, writes wait for it (a slow / stalled sink)

    @property
    def records(self) -> list[Record]:
        return [r for batch in self.batches for r in batch]

    async def open(self) -> None:
        return None

    async def write(self, records: Sequence[Record]) -> None:
        self.attempts += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.fail_next:
            self.fail_next -= 1
            raise SinkError("outage injected by the test", error_type="test_outage", retriable=self.retriable)
        self.batches.append(list(records))

    async def close(self) -> None:
        return None


def seqs(records: Sequence[Record]) -> list[int]:
    return [r.seq for r in records if r.seq is not None]


class PipelinedSink(RecordingSink):
    """Acknowledges each submitted batch `ack_delay_s` later (like ZeroBus); the acks listed in `fail_acks`
    (0-based submission numbers) fail instead. `max_unacked` shows how many batches were in flight at once."""

    def __init__(self, ack_delay_s: float = 0.02, fail_acks: frozenset[int] = frozenset()):
        super().__init__()
        self.ack_delay_s = ack_delay_s
        self.fail_acks = fail_acks
        self.submitted: list[list[Record]] = []
        self.unacked = 0
        self.max_unacked = 0

    async def send(self, records: Sequence[Record]) -> asyncio.Future[None]:
        number = len(self.submitted)
        self.submitted.append(list(records))
        self.unacked += 1
        self.max_unacked = max(self.max_unacked, self.unacked)
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def resolve() -> None:
            self.unacked -= 1
            if ack.cancelled():
                return
            if number in self.fail_acks:
                ack.set_exception(SinkError("ack lost (test)", error_type="test_ack_lost"))
            else:
                self.batches.append(list(records))
                ack.set_result(None)

        asyncio.get_running_loop().call_later(self.ack_delay_s, resolve)
        return ack


def declined_table(path: Path) -> None:
    """A table the blind appender leaves to delta-rs' writer: one with a CHECK constraint, which the writer
    must enforce."""
    DeltaTable.create(str(path), schema=RECORD_SCHEMA)
    DeltaTable(str(path)).alter.add_constraint({"seq_not_negative": "seq >= 0"})
