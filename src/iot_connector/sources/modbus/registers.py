"""Register maps to read requests (contiguous tags merged) and raw words to typed values.

Decoding uses `struct` on reordered bytes rather than pymodbus' `convert_from_registers`, which has no byte
swap (BADC/DCBA orders are common on real devices).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from iot_connector.sources.modbus.config import BIT_TABLES, MAX_BITS_PER_REQUEST, TYPE_WORDS, RegisterMap

_STRUCT = {"int16": ">h", "uint16": ">H", "int32": ">i", "uint32": ">I", "float32": ">f", "float64": ">d"}


@dataclass
class ReadBlock:
    """One read request: `count` registers (or bits) of `table` from `address`, feeding several tags."""

    table: str
    address: int
    count: int
    tags: list[RegisterMap] = field(default_factory=list)

    @property
    def spans(self) -> list[tuple[RegisterMap, int, int]]:
        """(tag, address, words) for each tag, computed once: polls walk this thousands of times a second."""
        if len(self._spans) != len(self.tags):
            self._spans = [(reg, reg.address, reg.words) for reg in self.tags]
        return self._spans

    _spans: list[tuple[RegisterMap, int, int]] = field(default_factory=list, repr=False)


def plan_reads(registers: Sequence[RegisterMap], max_words: int, max_gap: int = 0) -> list[ReadBlock]:
    """Group tags into as few requests as the limits allow: same table, adjacent (or within `max_gap`)."""
    blocks: list[ReadBlock] = []
    for table in ("coil", "discrete_input", "holding", "input"):
        limit = MAX_BITS_PER_REQUEST if table in BIT_TABLES else max_words
        current: ReadBlock | None = None
        for reg in sorted((r for r in registers if r.table == table), key=lambda r: (r.address, r.words)):
            end = reg.address + reg.words
            if current is not None:
                current_end = current.address + current.count
                if reg.address <= current_end + max_gap and max(end, current_end) - current.address <= limit:
                    current.count = max(end, current_end) - current.address
                    current.tags.append(reg)
                    continue
            current = ReadBlock(table, reg.address, reg.words, [reg])
            blocks.append(current)
    return blocks


def words_to_bytes(words: Sequence[int], byte_order: str, word_order: str) -> bytes:
    """Reorder device words into big-endian bytes of the value (A first)."""
    ordered = list(words)[::-1] if word_order == "little" else words
    fmt = "<" if byte_order == "little" else ">"
    return struct.pack(f"{fmt}{len(ordered)}H", *ordered)


def decode(reg: RegisterMap, words: Sequence[int]) -> int | float | str:
    """Typed value of `reg` from its own registers, before scale and offset."""
    return decoder(reg)(words)


def decoder(reg: RegisterMap) -> Callable[[Sequence[int]], int | float | str]:
    """A function decoding `reg`'s registers, specialised once per tag (polls decode thousands per second)."""
    if reg.data_type == "string":
        return lambda words: (
            words_to_bytes(words, reg.byte_order, "big").split(b"\x00", 1)[0].decode("latin-1").rstrip()
        )
    swap = reg.byte_order == "little"
    if reg.data_type in ("uint16", "int16"):
        signed = reg.data_type == "int16"

        def word(words: Sequence[int]) -> int:
            w = words[0]
            if swap:
                w = ((w & 0xFF) << 8) | (w >> 8)
            return w - 0x10000 if signed and w >= 0x8000 else w

        return word
    n = TYPE_WORDS[reg.data_type]
    packer = struct.Struct(f"{'<' if swap else '>'}{n}H")
    unpack = struct.Struct(_STRUCT[reg.data_type]).unpack
    if reg.word_order == "little":
        return lambda words: unpack(packer.pack(*reversed(words)))[0]
    return lambda words: unpack(packer.pack(*words))[0]


def encode(reg: RegisterMap, value: int | float | str) -> list[int]:
    """Registers a device holds for `value` (inverse of `decode`): used by tests and simulators."""
    if reg.data_type == "string":
        raw = str(value).encode("latin-1").ljust(2 * reg.count, b"\x00")[: 2 * reg.count]
        word_order = "big"
    else:
        raw = struct.pack(_STRUCT[reg.data_type], value)
        word_order = reg.word_order
    fmt = "<" if reg.byte_order == "little" else ">"
    words = list(struct.unpack(f"{fmt}{len(raw) // 2}H", raw))
    return words[::-1] if word_order == "little" else words
