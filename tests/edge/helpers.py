"""Shared test helpers for the edge pipeline: records with a known order, and a sink that fails on demand."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from iot_connector.model import Record
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
