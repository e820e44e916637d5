"""Modbus record building (prepared per register, one positional Record per reading) gives the same Records
as decoding each tag's words with `registers.decode`: every type, byte/word order, scale and BAD reads."""

from __future__ import annotations

import pytest

from iot_connector.model import Record
from iot_connector.sources.modbus.config import RegisterMap
from iot_connector.sources.modbus.records import BlockRecords, TagRecords
from iot_connector.sources.modbus.registers import decode, encode, plan_reads

CASES = [
    ({"data_type": "uint16"}, 65535),
    ({"data_type": "int16"}, -2),
    ({"data_type": "int16", "byte_order": "little"}, -300),
    ({"data_type": "uint16", "scale": 0.5, "offset": 1.0}, 40),
    ({"data_type": "int32", "word_order": "little"}, -70_000),
    ({"data_type": "uint32", "byte_order": "little", "word_order": "little"}, 3_000_000_000),
    ({"data_type": "float32"}, 1.5),
    ({"data_type": "float64", "word_order": "little"}, -2.25),
    ({"data_type": "string", "count": 3}, "abcd"),
]


def _expected(reg: RegisterMap, words: list[int], edge_ts: int) -> Record:
    """A reading built field by field from its own words: what the source must produce."""
    value = decode(reg, words)
    exact = reg.data_type in ("int16", "uint16", "int32", "uint32") and reg.scale == 1 and reg.offset == 0
    return Record(
        source_id="plc",
        protocol="modbus",
        endpoint="modbus+tcp://h:502/3",
        tag_id=f"hr:{reg.address}:{reg.data_type}:{reg.order_code}",
        data_type=reg.data_type,
        value_double=None if isinstance(value, str) else value * reg.scale + reg.offset,
        value_long=int(value) if exact else None,
        value_string=value if isinstance(value, str) else None,
        value_raw=" ".join(f"{w:04x}" for w in words),
        edge_ts=edge_ts,
        tag_path=reg.name,
        unit=reg.unit,
        attributes={"unit_id": "3", "register_type": "holding", "address": str(reg.address)},
    )


def _make(reg: RegisterMap) -> TagRecords:
    return TagRecords("plc", "modbus+tcp://h:502/3", "3", reg)


@pytest.mark.parametrize(("spec", "value"), CASES)
def test_each_type_and_order_matches_a_field_by_field_record(spec: dict, value: object) -> None:
    reg = RegisterMap(name="t", address=10, unit="bar", **spec)
    words = encode(reg, value)
    data = [0x1234] * 3 + words + [0xFFFF]  # the tag sits inside a larger merged read
    got = _make(reg).read(data, 3, 1_700_000_000_000_001)
    assert got == _expected(reg, words, 1_700_000_000_000_001)
    if isinstance(value, str):
        assert got.value_string == value
    else:
        assert got.value_double == pytest.approx(value * reg.scale + reg.offset)


def test_a_merged_block_gives_one_record_per_tag_and_bad_reads_keep_the_code() -> None:
    regs = [RegisterMap(name=f"t{i}", address=100 + 2 * i, data_type="float32") for i in range(4)]
    regs.append(RegisterMap(name="c", table="coil", address=7, data_type="bool"))
    blocks = plan_reads(regs, 125)
    holding = BlockRecords(blocks[1], _make)
    words = [w for i in range(4) for w in encode(regs[i], i + 0.5)]
    got = holding.read(words, 5)
    assert [(r.tag_path, r.value_double) for r in got] == [(f"t{i}", i + 0.5) for i in range(4)]
    coil = BlockRecords(blocks[0], _make).read([True], 5)[0]
    assert (coil.tag_id, coil.value_bool, coil.value_double, coil.value_raw) == ("co:7:bool", True, 1.0, None)
    bad = holding.bad(2, 6)
    assert [(r.quality, r.status_code, r.value_double, r.edge_ts) for r in bad] == [("BAD", 2, None, 6)] * 4
    assert bad[0].attributes == {"unit_id": "3", "register_type": "holding", "address": "100"}
