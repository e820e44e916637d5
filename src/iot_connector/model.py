"""The one Record every protocol produces, and its Arrow schema (the landing table's columns).

CONTRACT written first so sources and the pipeline are built in parallel. The protobuf message sent to
ZeroBus and the Delta/DDL columns are derived from RECORD_FIELDS, never restated elsewhere.
"""

from __future__ import annotations

import hashlib
import itertools
import secrets
import time
from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

SCHEMA_VERSION = 1
# Readings with neither a source timestamp nor a sequence have nothing of their own that tells two apart:
# they get a number unique to this process (random part + counter) instead of the edge time, which two
# readings of one socket read or one notification share.
_RUN = secrets.token_hex(8)
_UNIQUE = itertools.count()
Quality = Literal["GOOD", "UNCERTAIN", "BAD"]


def now_us() -> int:
    return time.time_ns() // 1000


@dataclass(slots=True)
class Record:
    """One value read from one tag. Timestamps are int64 microseconds since the Unix epoch, UTC."""

    source_id: str  # the configured connection name
    protocol: str  # opcua | mqtt | modbus | sparkplugb
    endpoint: str  # opc.tcp://..., mqtt://host:1883, modbus+tcp://host:502/1, /dev/ttyUSB0@1
    tag_id: str  # stable id: OPC UA nsu=<uri>;s=..., MQTT topic[#json.path], Modbus "hr:40001:float32:ABCD"
    data_type: str  # the source's type name (Double, Int32, float32, Sparkplug datatype...)
    quality: Quality = "GOOD"
    value_double: float | None = None  # numeric projection (bools 0/1, scaled Modbus values)
    value_long: int | None = None  # exact 64-bit integers
    value_string: str | None = None
    value_bool: bool | None = None
    value_raw: str | None = None  # raw JSON payload / register words / variant JSON of arrays and structs
    status_code: int | None = None  # raw OPC UA StatusCode, Modbus exception code...
    source_ts: int | None = None  # OPC UA SourceTimestamp, payload timestamp
    server_ts: int | None = None  # OPC UA ServerTimestamp, Sparkplug payload timestamp
    edge_ts: int = field(default_factory=now_us)  # when the agent read it
    seq: int | None = None  # per-source counter / Sparkplug seq
    tag_path: str | None = None  # browse path / UNS path
    unit: str | None = None
    # qos, retain, unit_id, register_type...; records of one tag may share one dict (Modbus): read-only once emitted
    attributes: dict[str, str] = field(default_factory=dict)
    is_replayed: bool = False  # came back from the disk spool after a restart
    ingest_ts: int | None = None  # set when handed to the sink
    record_id: str = ""  # filled by finalize(): deterministic, for de-duplication downstream
    # Not a column: the record's protobuf bytes (model_proto.encode_core), set once when it is spooled so the
    # ZeroBus sink sends them as they are instead of encoding the record a second time. Never set by sources.
    wire: bytes | None = field(default=None, init=False, repr=False, compare=False)

    def set_scalar(self, value: object) -> bool:
        """Fill the typed value columns from a Python scalar; False when `value` is not bool/int/float/str.

        bool is tested first because it is an int subclass; ints beyond 64 bits keep only the double projection.
        """
        if isinstance(value, bool):
            self.value_bool, self.value_double = value, 1.0 if value else 0.0
        elif isinstance(value, int):
            if -(2**63) <= value < 2**63:
                self.value_long = value
            self.value_double = float(value)
        elif isinstance(value, float):
            self.value_double = value
        elif isinstance(value, str):
            self.value_string = value
        else:
            return False
        return True

    def finalize(self) -> Record:
        """Set record_id (unless the source did, as MQTT does from the broker's message identity): hash(source,
        tag, source_ts, seq), so the same reading re-read gets the same id; without either, unique per reading.
        The id travels with the record through the spool, so a re-send from there keeps it."""
        if not self.record_id:
            if self.source_ts is None and self.seq is None:
                key = f"{self.source_id}\x1f{self.tag_id}\x1f{_RUN}\x1f{next(_UNIQUE)}"
            else:
                seq = self.seq if self.seq is not None else ""
                key = f"{self.source_id}\x1f{self.tag_id}\x1f{self.source_ts}\x1f{seq}"
            self.record_id = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        return self


_TS = pa.int64()
RECORD_FIELDS: list[pa.Field] = [
    pa.field("record_id", pa.string(), nullable=False),
    pa.field("agent_id", pa.string()),
    pa.field("schema_version", pa.int32()),
    pa.field("source_id", pa.string(), nullable=False),
    pa.field("protocol", pa.string(), nullable=False),
    pa.field("endpoint", pa.string()),
    pa.field("tag_id", pa.string(), nullable=False),
    pa.field("tag_path", pa.string()),
    pa.field("data_type", pa.string()),
    pa.field("value_double", pa.float64()),
    pa.field("value_long", pa.int64()),
    pa.field("value_string", pa.string()),
    pa.field("value_bool", pa.bool_()),
    pa.field("value_raw", pa.string()),
    pa.field("quality", pa.string()),
    pa.field("status_code", pa.int64()),
    pa.field("source_ts", _TS),
    pa.field("server_ts", _TS),
    pa.field("edge_ts", _TS, nullable=False),
    pa.field("ingest_ts", _TS),
    pa.field("seq", pa.int64()),
    pa.field("is_replayed", pa.bool_()),
    pa.field("unit", pa.string()),
    pa.field("attributes", pa.map_(pa.string(), pa.string())),
]
RECORD_SCHEMA = pa.schema(RECORD_FIELDS)
