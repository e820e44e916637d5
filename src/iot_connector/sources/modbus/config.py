"""Modbus source configuration: connection URL, serial line settings and the register map.

Validation does no I/O and names the offending key, so a bad map fails at load time, not at the first poll.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from iot_connector.sources.base import SourceConfig

Table = Literal["coil", "discrete_input", "holding", "input"]
DataType = Literal["bool", "int16", "uint16", "int32", "uint32", "float32", "float64", "string"]
Order = Literal["big", "little"]

# Registers (16-bit words) each data type occupies; strings take `count` registers.
TYPE_WORDS: dict[str, int] = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2, "float64": 4}
BIT_TABLES = ("coil", "discrete_input")
MAX_WORDS_PER_REQUEST = 125  # Modbus spec limit for function codes 3/4
MAX_BITS_PER_REQUEST = 2000  # Modbus spec limit for function codes 1/2


class RegisterMap(BaseModel):
    """One tag: where it lives in the device and how its registers become a value."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(..., min_length=1, description="tag name, becomes tag_path")
    table: Table = "holding"
    address: int = Field(..., ge=0, le=65535, description="0-based protocol address (40001 -> 0)")
    data_type: DataType = "uint16"
    count: int = Field(1, ge=1, le=MAX_WORDS_PER_REQUEST, description="string length in registers (2 chars each)")
    byte_order: Order = Field("big", description="byte order inside each 16-bit register (little = BADC/DCBA)")
    word_order: Order = Field("big", description="register order of 32/64-bit values (little = CDAB/DCBA)")
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None

    @model_validator(mode="after")
    def _type_fits_table(self) -> RegisterMap:
        if self.table in BIT_TABLES and self.data_type != "bool":
            raise ValueError(f"register {self.name!r}: table {self.table} holds bits; set data_type: bool")
        if self.table not in BIT_TABLES and self.data_type == "bool":
            raise ValueError(f"register {self.name!r}: data_type bool needs table coil or discrete_input")
        if self.data_type != "string" and self.count != 1:
            raise ValueError(f"register {self.name!r}: count is only for data_type string")
        if self.address + self.words > 65536:
            raise ValueError(f"register {self.name!r}: address {self.address} + {self.words} words passes 65535")
        return self

    @property
    def words(self) -> int:
        """Registers (or bits, for coil tables) this tag occupies."""
        if self.data_type == "string":
            return self.count
        return 1 if self.data_type == "bool" else TYPE_WORDS[self.data_type]

    @property
    def order_code(self) -> str:
        """ABCD-style notation used in tag ids (A = most significant byte of the value)."""
        letters = "ABCDEFGH"[: 2 * self.words] if self.data_type != "string" else "AB"
        pairs = [letters[i : i + 2] for i in range(0, len(letters), 2)]
        if self.byte_order == "little":
            pairs = [p[::-1] for p in pairs]
        if self.word_order == "little":
            pairs.reverse()
        return "".join(pairs)


class ModbusConfig(SourceConfig):
    """A Modbus TCP or RTU connection polled every `poll_interval_s`."""

    type: Literal["modbus"] = "modbus"
    url: str = Field(..., description="modbus+tcp://host:502 or modbus+rtu:///dev/ttyUSB0")
    unit_id: int = Field(1, ge=0, le=255, description="Modbus unit / slave / device id")
    poll_interval_s: float = Field(1.0, gt=0)
    timeout_s: float = Field(3.0, gt=0)
    retries: int = Field(1, ge=0, le=10)
    baudrate: int = Field(19200, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    bytesize: Literal[7, 8] = 8
    max_gap: int = Field(0, ge=0, le=100, description="unused registers a merged read may span between tags")
    max_registers_per_request: int = Field(MAX_WORDS_PER_REQUEST, ge=1, le=MAX_WORDS_PER_REQUEST)
    registers: list[RegisterMap] = Field(..., min_length=1)

    @field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        parts = urlsplit(url)
        if parts.scheme == "modbus+tcp":
            if not parts.hostname:
                raise ValueError(f"url {url!r}: modbus+tcp needs a host, e.g. modbus+tcp://10.0.0.5:502")
            _ = parts.port  # raises ValueError for a non-numeric port
        elif parts.scheme == "modbus+rtu":
            if not parts.path or parts.path == "/":
                raise ValueError(f"url {url!r}: modbus+rtu needs a device path, e.g. modbus+rtu:///dev/ttyUSB0")
        else:
            raise ValueError(f"url {url!r}: scheme must be modbus+tcp:// or modbus+rtu://")
        return url

    @model_validator(mode="after")
    def _unique_names(self) -> ModbusConfig:
        seen: set[str] = set()
        for reg in self.registers:
            if reg.name in seen:
                raise ValueError(f"registers: name {reg.name!r} is used twice; tag names must be unique")
            seen.add(reg.name)
            if reg.words > self.max_registers_per_request:
                raise ValueError(
                    f"register {reg.name!r}: {reg.words} registers exceed max_registers_per_request "
                    f"{self.max_registers_per_request}"
                )
        return self

    @property
    def is_tcp(self) -> bool:
        return self.url.startswith("modbus+tcp:")

    @property
    def endpoint(self) -> str:
        """Endpoint string for records: the URL plus the unit id."""
        return f"{self.url.rstrip('/')}/{self.unit_id}" if self.is_tcp else f"{urlsplit(self.url).path}@{self.unit_id}"
