"""Modbus TCP / RTU polling source (pymodbus async client).

One request at a time per connection: RTU has no transaction id, so concurrent requests on one bus can be
matched to the wrong reply (pymodbus#1509). Contiguous tags are merged into one request (see registers.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import TypedDict
from urllib.parse import urlsplit

from pymodbus import FramerType, ModbusException
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.pdu import ExceptionResponse, ModbusPDU

from iot_connector.model import Record, now_us
from iot_connector.sources.base import Emit, Source
from iot_connector.sources.modbus.config import BIT_TABLES, ModbusConfig
from iot_connector.sources.modbus.records import BlockRecords, TagRecords
from iot_connector.sources.modbus.registers import ReadBlock, plan_reads
from iot_connector.wording import plural

log = logging.getLogger(__name__)

EMIT_EVERY = 1000  # records; a poll of a large map is handed over in parts (each part waits for an fsync)


class _ClientOptions(TypedDict):
    """The options both pymodbus clients (TCP, serial) take alike."""

    timeout: float
    retries: int
    reconnect_delay: float  # 0: no automatic reconnect by pymodbus; Source.run reconnects


class ModbusSource(Source):
    protocol = "modbus"
    config: ModbusConfig
    transient_errors = (ModbusException, ConnectionError, OSError, asyncio.TimeoutError)

    def __init__(self, config: ModbusConfig, emit: Emit):
        super().__init__(config, emit)
        self.blocks: list[ReadBlock] = plan_reads(config.registers, config.max_registers_per_request, config.max_gap)
        endpoint, unit = config.endpoint, str(config.unit_id)
        self._builders = [
            BlockRecords(block, lambda reg: TagRecords(config.name, endpoint, unit, reg)) for block in self.blocks
        ]
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self.health.details["requests_per_poll"] = str(len(self.blocks))

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        cfg = self.config
        common: _ClientOptions = {"timeout": cfg.timeout_s, "retries": cfg.retries, "reconnect_delay": 0}
        if cfg.is_tcp:
            parts = urlsplit(cfg.url)
            return AsyncModbusTcpClient(parts.hostname or "", port=parts.port or 502, **common)
        return AsyncModbusSerialClient(
            urlsplit(cfg.url).path,
            framer=FramerType.RTU,
            baudrate=cfg.baudrate,
            parity=cfg.parity,
            stopbits=cfg.stopbits,
            bytesize=cfg.bytesize,
            **common,
        )

    async def _connect(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        client = self._new_client()
        if not await client.connect():
            client.close()
            raise ConnectionError(f"cannot connect to {self.config.url}")
        return client

    async def session(self) -> None:
        # No TCP probe (Source.probe_address): a session's connect is as cheap as one, and devices that take
        # one or two connections at a time are better not knocked on twice. A serial line has nothing to probe.
        self._client = client = await self._connect()
        try:
            await self._poll_forever(client)
        finally:
            self._client = None
            client.close()

    async def _poll_forever(self, client: AsyncModbusTcpClient | AsyncModbusSerialClient) -> None:
        """Reads overlap the previous hand-over: while the pipeline makes one part durable (an fsync of a few
        ms) the next blocks are read. At most one emit is in flight, so parts still arrive in order."""
        next_at = time.monotonic()
        handing: asyncio.Future[None] | None = None
        try:
            while not self._stopped.is_set():
                pending: list[Record] = []
                for index in range(len(self.blocks)):
                    pending += await self._read_block(client, index)
                    if not self.health.connected:
                        self.established()  # the device answered (an open RTU port alone proves nothing)
                    if len(pending) >= EMIT_EVERY:  # big maps: hand over early, keeps latency low
                        handing = await self._hand_over(handing, pending)
                        pending = []
                handing = await self._hand_over(handing, pending)
                next_at += self.config.poll_interval_s
                wait = next_at - time.monotonic()
                if wait < 0:  # a poll took longer than the interval: start the next one now, do not catch up
                    next_at, wait = time.monotonic(), 0
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), wait)
        finally:
            if handing is not None:  # what was read is handed over before the source stops or reconnects
                await handing

    async def _hand_over(
        self, previous: asyncio.Future[None] | None, records: list[Record]
    ) -> asyncio.Future[None] | None:
        """Wait for the previous emit, then start emitting `records` without waiting for it."""
        if previous is not None:
            await previous
        return asyncio.ensure_future(self._emit(records)) if records else None

    async def _emit(self, records: list[Record]) -> None:
        if records:
            await self.emit(records)
            self.health.records_read += len(records)
            self.health.last_record_at_us = records[-1].edge_ts

    async def poll_once(self, client: AsyncModbusTcpClient | AsyncModbusSerialClient) -> list[Record]:
        """Read every block once."""
        records: list[Record] = []
        for index in range(len(self.blocks)):
            records += await self._read_block(client, index)
        return records

    async def _read_block(self, client: AsyncModbusTcpClient | AsyncModbusSerialClient, index: int) -> list[Record]:
        """One request; a device exception gives BAD records (with the exception code) for the block's tags."""
        block = self.blocks[index]
        response = await self._read(client, block)
        edge_ts = now_us()
        if isinstance(response, ExceptionResponse) or response.isError():
            code = getattr(response, "exception_code", 0)
            self.health.last_error = f"{block.table} {block.address}+{block.count}: Modbus exception {code}"
            return self._builders[index].bad(code, edge_ts)
        return self.decode_block(index, response.bits if block.table in BIT_TABLES else response.registers, edge_ts)

    def decode_block(self, index: int, data: Sequence, edge_ts: int) -> list[Record]:
        """Records of block `index` from the words (or bits) a device answered: all of them when they fit the
        map, else tag by tag, each tag that does not fit (too short, a word beyond 16 bits) rejected alone."""
        try:
            return self._builders[index].read(data, edge_ts)
        except Exception:
            records, failed = self._builders[index].read_each(data, edge_ts)
            for tag, reason in failed:
                self.reject(f"register {tag}", reason)
            return records

    async def _read(self, client: AsyncModbusTcpClient | AsyncModbusSerialClient, block: ReadBlock) -> ModbusPDU:
        reader = {
            "coil": client.read_coils,
            "discrete_input": client.read_discrete_inputs,
            "holding": client.read_holding_registers,
            "input": client.read_input_registers,
        }[block.table]
        return await reader(block.address, count=block.count, device_id=self.config.unit_id)

    async def test_connection(self) -> str:
        """Connect, read every block once and say what came back."""
        client = await self._connect()
        try:
            records = await self.poll_once(client)
        finally:
            client.close()
        bad = [r.tag_path for r in records if r.quality == "BAD"]
        summary = f"connected to {self.config.endpoint}: read {plural(len(records), 'tag')} in {plural(len(self.blocks), 'request')}"
        return summary + (f"; device exceptions for {', '.join(map(str, bad))}" if bad else "")
