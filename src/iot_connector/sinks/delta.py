"""Local Delta table written with delta-rs: the embedded default, so the agent is useful without Databricks.

Append-only with RECORD_SCHEMA; a batch is one Delta commit, which is atomic, so a crash mid-write leaves
at most an orphan Parquet file and the batch is re-sent from the spool (same record_id) on restart.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import DeltaError

from iot_connector.model import RECORD_SCHEMA, Record
from iot_connector.model_proto import record_row
from iot_connector.sinks.base import Sink, SinkError


def records_table(records: Sequence[Record], agent_id: str) -> pa.Table:
    return pa.Table.from_pylist([record_row(r, agent_id) for r in records], schema=RECORD_SCHEMA)


class DeltaSink(Sink):
    name = "delta"

    def __init__(self, path: Path, agent_id: str):
        self.path = Path(path)
        self.agent_id = agent_id

    async def open(self) -> None:
        await asyncio.to_thread(self._create_if_missing)

    def _create_if_missing(self) -> None:
        try:
            if not DeltaTable.is_deltatable(str(self.path)):
                self.path.mkdir(parents=True, exist_ok=True)
                DeltaTable.create(str(self.path), schema=RECORD_SCHEMA, mode="ignore")
        except (OSError, DeltaError) as exc:
            raise SinkError(f"cannot create the Delta table at {self.path}: {exc}", error_type="delta_open") from exc

    async def write(self, records: Sequence[Record]) -> None:
        table = records_table(records, self.agent_id)
        try:
            await asyncio.to_thread(write_deltalake, str(self.path), table, mode="append")
        except (OSError, DeltaError) as exc:
            raise SinkError(f"Delta append to {self.path} failed: {exc}", error_type="delta_write") from exc

    async def close(self) -> None:
        return None
