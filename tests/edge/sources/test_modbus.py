"""Modbus source against a real pymodbus server: TCP on 127.0.0.1 and RTU over a socat pty pair."""

from __future__ import annotations

import asyncio
import contextlib
import re
import struct
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError
from pymodbus.datastore import ModbusDeviceContext, ModbusSequentialDataBlock, ModbusServerContext
from pymodbus.server import ModbusSerialServer, ModbusTcpServer

from iot_connector.sources.modbus import ModbusConfig, ModbusSource
from iot_connector.sources.modbus.registers import plan_reads
from tests.edge.sources.helpers import Collector, FailsOnce, free_port, running

pytestmark = pytest.mark.integration

FORMATS = {"int16": "h", "uint16": "H", "int32": "i", "uint32": "I", "float32": "f", "float64": "d"}
VALUES = {
    "int16": -1234,
    "uint16": 65000,
    "int32": -123456789,
    "uint32": 4000000000,
    "float32": -3.5,
    "float64": 1e-300,
}
ORDERS = {"ABCD": ("big", "big"), "BADC": ("little", "big"), "CDAB": ("big", "little"), "DCBA": ("little", "little")}


def device_words(value: float, fmt: str, order: str) -> list[int]:
    """Registers a device holds for `value` in ABCD-notation `order`, built from struct only (not our code)."""
    raw = struct.pack(">" + fmt, value)  # A = most significant byte
    if len(raw) == 2:
        order = order[:2]
    elif len(raw) == 8:  # extend ABCD rules to 8 bytes: word pairs, byte swap inside words
        order = {"ABCD": "ABCDEFGH", "BADC": "BADCFEHG", "CDAB": "GHEFCDAB", "DCBA": "HGFEDCBA"}[order]
    arranged = bytes(raw["ABCDEFGH".index(letter)] for letter in order)
    return list(struct.unpack(f">{len(arranged) // 2}H", arranged))


def build_device() -> tuple[list[int], list[dict], dict[str, object]]:
    """Holding registers with every type × order, plus the register map and expected values."""
    regs: list[int] = []
    tags: list[dict] = []
    expected: dict[str, object] = {}
    for dtype, fmt in FORMATS.items():
        for order, (byte_order, word_order) in ORDERS.items():
            if dtype in ("int16", "uint16") and word_order == "little":
                continue  # one register: word order does not apply
            name = f"{dtype}_{order}"
            tags.append(
                {
                    "name": name,
                    "address": len(regs),
                    "data_type": dtype,
                    "byte_order": byte_order,
                    "word_order": word_order,
                }
            )
            expected[name] = VALUES[dtype]
            regs += device_words(VALUES[dtype], fmt, order)
    text = b"PUMP-07\x00"  # 4 registers, NUL padded
    tags.append({"name": "serial", "address": len(regs), "data_type": "string", "count": 4})
    expected["serial"] = "PUMP-07"
    regs += list(struct.unpack(">4H", text))
    tags.append({"name": "scaled", "address": len(regs), "data_type": "int16", "scale": 0.1, "offset": -40})
    expected["scaled"] = 655 * 0.1 - 40
    regs.append(655)
    return regs, tags, expected


def context(regs: list[int]) -> ModbusServerContext:
    # The 3.16 datastore is offset by one: a block starting at 1 serves protocol address 0.
    device = ModbusDeviceContext(
        hr=ModbusSequentialDataBlock(1, regs),
        ir=ModbusSequentialDataBlock(1, [7, 8, 9]),
        co=ModbusSequentialDataBlock(1, [True, False, True]),
        di=ModbusSequentialDataBlock(1, [False, True]),
    )
    return ModbusServerContext(devices={1: device}, single=False)


@contextlib.asynccontextmanager
async def tcp_server(regs: list[int], port: int) -> AsyncIterator[ModbusTcpServer]:
    server = ModbusTcpServer(context(regs), address=("127.0.0.1", port))
    task = asyncio.create_task(server.serve_forever())
    await asyncio.sleep(0.1)
    try:
        yield server
    finally:
        await server.shutdown()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def extra_tags() -> list[dict]:
    return [
        {"name": "ir1", "table": "input", "address": 1, "data_type": "uint16"},
        {"name": "coil0", "table": "coil", "address": 0, "data_type": "bool"},
        {"name": "coil1", "table": "coil", "address": 1, "data_type": "bool"},
        {"name": "coil2", "table": "coil", "address": 2, "data_type": "bool"},
        {"name": "di1", "table": "discrete_input", "address": 1, "data_type": "bool"},
    ]


def check_values(collector: Collector, expected: dict[str, object]) -> None:
    got = collector.by_tag()
    for name, value in expected.items():
        rec = got[name]
        assert rec.quality == "GOOD", name
        if isinstance(value, str):
            assert rec.value_string == value
        else:
            assert rec.value_double == pytest.approx(value, rel=1e-6), name
    assert got["ir1"].value_long == 8
    assert [got[f"coil{i}"].value_bool for i in range(3)] == [True, False, True]
    assert got["di1"].value_bool is True


async def test_tcp_every_type_and_order_decodes_to_the_server_value():
    regs, tags, expected = build_device()
    port = free_port()
    cfg = ModbusConfig(
        name="plc", url=f"modbus+tcp://127.0.0.1:{port}", poll_interval_s=0.05, registers=tags + extra_tags()
    )
    collector = Collector()
    source = ModbusSource(cfg, collector)
    async with tcp_server(regs, port), running(source):
        await collector.wait_for(lambda recs: len(recs) >= len(cfg.registers))
    check_values(collector, expected)
    got = collector.by_tag()
    assert got["int32_CDAB"].tag_id == f"hr:{tags[[t['name'] for t in tags].index('int32_CDAB')]['address']}:int32:CDAB"
    assert got["int32_ABCD"].value_long == VALUES["int32"]
    assert got["scaled"].value_long is None  # scaled: only the double projection is exact
    assert got["serial"].endpoint == f"modbus+tcp://127.0.0.1:{port}/1"
    # All holding registers sit back to back: one request per table (+ the split at 125 registers).
    assert len(source.blocks) == len(plan_reads(cfg.registers, 125))
    assert sum(b.table == "holding" for b in source.blocks) == -(-len(regs) // 125)


async def test_device_exception_gives_bad_quality_with_code_and_other_tags_still_read():
    regs, _, _ = build_device()
    port = free_port()
    tags = [
        {"name": "ok", "address": 0, "data_type": "int16"},
        {"name": "missing", "address": 5000, "data_type": "uint16"},  # beyond the server's block
    ]
    collector = Collector()
    source = ModbusSource(
        ModbusConfig(name="plc", url=f"modbus+tcp://127.0.0.1:{port}", poll_interval_s=0.05, registers=tags), collector
    )
    async with tcp_server(regs, port), running(source):
        await collector.wait_for(lambda recs: {"ok", "missing"} <= {r.tag_path for r in recs})
    got = collector.by_tag()
    assert got["ok"].quality == "GOOD"
    assert got["missing"].quality == "BAD"
    assert got["missing"].status_code == 2  # ILLEGAL DATA ADDRESS
    assert "exception 2" in (source.health.last_error or "")


async def test_source_started_before_the_server_connects_when_it_comes_up_and_after_a_restart():
    regs, tags, _ = build_device()
    port = free_port()
    collector = Collector()
    cfg = ModbusConfig(
        name="plc",
        url=f"modbus+tcp://127.0.0.1:{port}",
        poll_interval_s=0.05,
        timeout_s=0.5,
        reconnect_max_delay_s=0.5,
        registers=tags[:2],
    )
    source = ModbusSource(cfg, collector)
    async with running(source):
        await asyncio.sleep(0.5)
        assert not source.health.connected
        assert source.health.last_error
        async with tcp_server(regs, port):
            await collector.wait_for(lambda recs: len(recs) >= 2)
        before = len(collector.records)
        await asyncio.sleep(0.3)
        async with tcp_server(regs, port):
            await collector.wait_for(lambda recs: len(recs) > before + 4)
    assert source.health.reconnects >= 1


async def test_an_emit_failure_is_reported_and_polling_goes_on():
    regs, tags, _ = build_device()
    port = free_port()
    collector = fails_once = FailsOnce()

    cfg = ModbusConfig(
        name="plc",
        url=f"modbus+tcp://127.0.0.1:{port}",
        poll_interval_s=0.05,
        reconnect_max_delay_s=0.5,
        registers=tags[:2],
    )
    source = ModbusSource(cfg, fails_once)
    async with tcp_server(regs, port), running(source):
        await collector.wait_for(lambda recs: len(recs) >= 2)
    assert source.health.reconnects == 1


async def test_test_connection_reports_what_it_read():
    regs, tags, _ = build_device()
    port = free_port()
    source = ModbusSource(ModbusConfig(name="plc", url=f"modbus+tcp://127.0.0.1:{port}", registers=tags), Collector())
    async with tcp_server(regs, port):
        text = await source.test_connection()
    assert f"read {len(tags)} tags" in text
    with pytest.raises(ConnectionError, match="cannot connect"):
        await source.test_connection()


async def test_rtu_over_a_pty_pair_decodes_every_type(pty_pair):
    server_tty, client_tty = pty_pair
    regs, tags, expected = build_device()
    server = ModbusSerialServer(context(regs), port=server_tty, baudrate=115200, parity="N", stopbits=1)
    task = asyncio.create_task(server.serve_forever())
    cfg = ModbusConfig(
        name="rtu",
        url=f"modbus+rtu://{client_tty}",
        baudrate=115200,
        poll_interval_s=0.1,
        registers=tags + extra_tags(),
    )
    collector = Collector()
    try:
        await asyncio.sleep(0.2)
        async with running(ModbusSource(cfg, collector)):
            await collector.wait_for(lambda recs: len(recs) >= len(cfg.registers), timeout=15)
    finally:
        await server.shutdown()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    check_values(collector, expected)
    assert collector.records[0].endpoint == f"{client_tty}@1"


def test_contiguous_tags_merge_and_respect_the_125_register_limit():
    tags = [{"name": f"t{i}", "address": i, "data_type": "uint16"} for i in range(300)]
    tags.append({"name": "far", "address": 1000, "data_type": "float32"})
    cfg = ModbusConfig(name="x", url="modbus+tcp://h:502", registers=tags)
    blocks = plan_reads(cfg.registers, cfg.max_registers_per_request)
    assert [(b.address, b.count) for b in blocks] == [(0, 125), (125, 125), (250, 50), (1000, 2)]
    gap = ModbusConfig(name="x", url="modbus+tcp://h:502", max_gap=10, registers=[tags[0], {"name": "b", "address": 8}])
    assert [(b.address, b.count) for b in plan_reads(gap.registers, 125, gap.max_gap)] == [(0, 9)]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"url": "tcp://h:502"}, "scheme must be modbus\\+tcp"),
        ({"url": "modbus+rtu://"}, "needs a device path"),
        ({"url": "modbus+tcp://h:port"}, "url"),
        ({"registers": [{"name": "a", "address": 0, "data_type": "bool"}]}, "bool needs table coil"),
        ({"registers": [{"name": "a", "table": "coil", "address": 0, "data_type": "int16"}]}, "holds bits"),
        ({"registers": [{"name": "a", "address": 0}, {"name": "a", "address": 1}]}, "used twice"),
        ({"registers": [{"name": "a", "address": 0, "data_type": "int32", "count": 3}]}, "count is only for"),
        (
            {"registers": [{"name": "a", "table": "coil", "address": 0, "data_type": "bool", "count": 8}]},
            "count is only",
        ),
        ({"registers": [{"name": "a", "address": 65535, "data_type": "float32"}]}, "passes 65535"),
        ({"registers": [{"name": "a", "address": 0, "bogus": 1}]}, "bogus"),
        ({"registers": []}, "registers"),
    ],
)
def test_bad_configs_name_what_is_wrong(change, message):
    data = {"name": "x", "url": "modbus+tcp://h:502", "registers": [{"name": "a", "address": 0}], **change}
    with pytest.raises(ValidationError, match=re.compile(message, re.S)):
        ModbusConfig.model_validate(data)


def test_sample_config_loads():
    sample = Path(__file__).parents[3] / "src/iot_connector/sources/modbus/sample.yaml"
    cfg = ModbusConfig.model_validate(yaml.safe_load(sample.read_text()))
    assert cfg.registers[0].order_code == "CDAB"


def answer_short(server: ModbusTcpServer) -> None:
    """Make the server a broken device: it answers one register fewer than asked (the PDU stays well formed)."""
    read = server.context.async_getValues

    async def short(device_id, func_code, address, count=1):
        values = await read(device_id, func_code, address, count)
        return values[:-1] if isinstance(values, list) else values

    server.context.async_getValues = short  # type: ignore[method-assign]


async def test_a_short_answer_loses_only_the_tag_it_does_not_cover_and_polling_goes_on():
    port = free_port()
    device = ModbusDeviceContext(hr=ModbusSequentialDataBlock(1, [7, 0x4049, 0x0FDB, 5]))
    server = ModbusTcpServer(ModbusServerContext(devices={1: device}, single=False), address=("127.0.0.1", port))
    answer_short(server)
    tags = [
        {"name": "a", "address": 0, "data_type": "uint16"},
        {"name": "pi", "address": 1, "data_type": "float32"},
        {"name": "last", "address": 3, "data_type": "int16"},  # its register is the one never answered
    ]
    collector = Collector()
    source = ModbusSource(
        ModbusConfig(name="plc", url=f"modbus+tcp://127.0.0.1:{port}", poll_interval_s=0.05, registers=tags), collector
    )
    rejected: list[tuple] = []
    source.on_reject = lambda *args: rejected.append(args)
    task = asyncio.create_task(server.serve_forever())
    try:
        await asyncio.sleep(0.1)
        async with running(source):
            await collector.wait_for(lambda recs: sum(r.tag_path == "a" for r in recs) >= 3)  # three polls
    finally:
        await server.shutdown()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert {r.tag_path for r in collector.records} == {"a", "pi"}
    assert collector.by_tag()["pi"].value_double == pytest.approx(3.1415927)
    assert len(rejected) >= 3
    assert rejected[0][:2] == ("plc", "register hr:3:int16:AB")
    assert source.health.reconnects == 0  # the connection was never dropped for it
