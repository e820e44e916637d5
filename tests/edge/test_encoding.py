"""Each record is encoded once: the spool frame holds its protobuf bytes, which ZeroBus receives as they are
(plus the send-time columns), and old spool frames still replay. Delta columns are built column-wise."""

from __future__ import annotations

import dataclasses
import marshal
import random
import struct
import zlib
from pathlib import Path

import pyarrow as pa
import pytest

from iot_connector.config.models import PipelineSettings
from iot_connector.model import RECORD_SCHEMA, Record
from iot_connector.model_proto import encode_records, record_message_class, record_row
from iot_connector.pipeline import Pipeline, codec, make_buffer
from iot_connector.pipeline.spool import Spool
from iot_connector.sinks.delta import records_table
from tests.edge.helpers import RecordingSink, make_records


def _varied() -> list[Record]:
    """Records exercising every column kind: None values, int64 limits, unicode, empty and full maps."""
    records = make_records(6)
    records[0].value_long, records[0].value_double = 2**63 - 1, None
    records[1].value_long, records[1].status_code = -(2**63), -1
    records[2].value_string, records[2].tag_path, records[2].unit = "café ☕", "Plant/Ligne 2", "°C"
    records[3].value_bool, records[3].quality, records[3].attributes = False, "BAD", {}
    records[4].value_raw, records[4].server_ts, records[4].endpoint = "00ff 1234", 5, None
    records[5].attributes = {"k": "v", "unit_id": "7", "empty": ""}
    return [r.finalize() for r in records]


def _reference(record: Record, agent_id: str) -> bytes:
    """Every column set on one message: what a straightforward encoder sends (the pre-spool encoding)."""
    msg = record_message_class()()
    for name, value in record_row(record, agent_id).items():
        if name == "attributes":
            msg.attributes.update(value)
        elif value is not None:
            setattr(msg, name, value)
    return msg.SerializeToString()


def _parsed(data: bytes):
    return record_message_class().FromString(data)


def test_spooled_bytes_plus_send_columns_equal_a_full_encoding() -> None:
    records = _varied()
    payloads = Spool.encode(records)  # what the spool writes; keeps the bytes on each record
    assert all(p[:1] == codec.FORMAT_PROTO for p in payloads)
    for i, record in enumerate(records):
        record.ingest_ts = 1_800_000_000_000_000 + i
        record.is_replayed = i % 2 == 1
    sent = encode_records(records, "edge-9")
    for record, data in zip(records, sent):
        assert _parsed(data) == _parsed(_reference(record, "edge-9"))
    row = _parsed(sent[2])
    assert (row.value_string, row.unit, row.agent_id, row.is_replayed) == ("café ☕", "°C", "edge-9", False)
    assert not row.HasField("value_double") or row.value_double == 2.0


def _reopened_equal(path: Path, records: list[Record]) -> tuple[Spool, list[Record]]:
    """Open the spool in `path` and check it replays exactly `records` (every field), flagged as replayed."""
    spool = Spool(path, durability="write")
    spool.open()
    got, _ = spool.read(100)
    assert all(r.is_replayed for r in got)
    for record in records:
        record.is_replayed = True
    assert got == records  # every dataclass field
    return spool, got


async def test_frames_replayed_from_disk_keep_every_column_and_their_bytes(tmp_path: Path) -> None:
    records = _varied()
    spool = Spool(tmp_path, durability="write", memory_records=0)  # no memory cache: read from disk
    spool.open()
    spool.append(records, spool.encode(records))
    await spool.close()
    again, got = _reopened_equal(tmp_path, records)
    assert [r.wire for r in got] == [r.wire for r in records]
    for record in got:
        record.ingest_ts = 1
    assert [_parsed(b) for b in encode_records(got, "a")] == [_parsed(_reference(r, "a")) for r in got]
    await again.close()


async def test_spool_written_in_the_marshal_format_still_replays(tmp_path: Path) -> None:
    records = [r.finalize() for r in make_records(20)]
    frames = b""
    for record in records:
        payload = codec.FORMAT_MARSHAL + marshal.dumps(codec._VALUES(record), 4)
        frames += struct.pack("<II", len(payload), zlib.crc32(payload)) + payload
    (tmp_path / "000000000001.seg").write_bytes(frames)
    spool, _ = _reopened_equal(tmp_path, records)
    newer = make_records(5, 20)  # appended behind the old frames in the new format, read in order
    spool.append(newer, spool.encode(newer))
    more, _ = spool.read(100)
    assert [r.seq for r in more] == list(range(20, 25))
    await spool.close()


def test_codec_rejects_bytes_that_are_not_a_record() -> None:
    with pytest.raises(ValueError, match="not a Record"):
        codec.decode(codec.FORMAT_PROTO + b"\x08\x01")  # a valid varint field, but no required columns
    with pytest.raises(ValueError, match="not a Record"):
        codec.decode(codec.FORMAT_PROTO + b"\xff\xff")


async def test_an_unencodable_record_is_refused_alone_and_counted(tmp_path: Path) -> None:
    settings = PipelineSettings.model_validate({"batch_max_records": 50, "batch_max_wait_ms": 5})
    sink = RecordingSink()
    pipe = Pipeline(settings, sink, make_buffer(settings, tmp_path / "spool"))
    await pipe.start()
    records = make_records(10)
    records[3].value_long = 2**70  # no int64 column can hold it
    records[6].attributes = {"unit_id": 7}  # type: ignore[dict-item]  # map<string,string>
    await pipe.emit(records)
    for _ in range(200):
        if len(sink.records) == 8:
            break
        await __import__("asyncio").sleep(0.01)
    await pipe.stop()
    assert [r.seq for r in sink.records] == [0, 1, 2, 4, 5, 7, 8, 9]
    assert pipe.metrics.records_failed.labels(error_type="invalid_record", source="plc1")._value.get() == 2


def vars_of(record: Record) -> dict:
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(Record) if f.init}


def test_delta_columns_equal_a_row_by_row_table() -> None:
    records = _varied()
    records[1].ingest_ts, records[2].is_replayed = 42, True
    expected = pa.Table.from_pylist([record_row(r, "edge-2") for r in records], schema=RECORD_SCHEMA)
    table = records_table(records, "edge-2")
    assert table.schema == RECORD_SCHEMA
    assert table.equals(expected)
    assert records_table([], "x").num_rows == 0
    shared = [{"qos": "1"}, {}, {"unit_id": "3", "register": "hr"}]
    many = [Record(**{**vars_of(r), "attributes": shared[i % 3]}) for i, r in enumerate(records * 10)]
    expected = pa.Table.from_pylist([record_row(r, "edge-2") for r in many], schema=RECORD_SCHEMA)
    assert records_table(many, "edge-2").equals(expected)  # shared attribute dicts: converted once, repeated


def _random_record(rng: random.Random, i: int) -> Record:
    def maybe(value):
        return value if rng.random() < 0.6 else None

    ints = [0, 1, 127, 128, 16383, 16384, 2**31, 2**63 - 1, -1, -(2**63), rng.randrange(-(2**63), 2**63)]
    text = ["", "a", "é☕𝄞", "x" * 200, "tag/with spaces"]
    return Record(
        source_id=rng.choice(["s1", "plc-2", "ünï"]),
        protocol=rng.choice(["modbus", "mqtt", "opcua"]),
        endpoint=maybe(rng.choice(text)),
        tag_id=f"t{rng.randrange(50)}",
        data_type=maybe(rng.choice(["Double", "int16", ""])),
        quality=rng.choice(["GOOD", "BAD", "UNCERTAIN"]),
        value_double=maybe(rng.choice([0.0, -0.0, 1e308, -2.5, float("inf"), 3])),
        value_long=maybe(rng.choice(ints)),
        value_string=maybe(rng.choice(text)),
        value_bool=maybe(rng.choice([True, False])),
        value_raw=maybe(rng.choice(text)),
        status_code=maybe(rng.choice(ints)),
        source_ts=maybe(rng.choice(ints)),
        server_ts=maybe(rng.choice(ints)),
        edge_ts=rng.choice([1_795_000_000_000_000 + i, 0, 5, 2**62]),
        seq=maybe(rng.choice(ints)),
        tag_path=maybe(rng.choice(text)),
        unit=maybe(rng.choice(text)),
        attributes=rng.choice([{}, {"a": "1"}, {"qos": "1", "retain": "", "ü": "☕"}]),
    ).finalize()


def test_hand_written_wire_bytes_parse_to_the_same_message_as_upb() -> None:
    rng = random.Random(5)
    for i in range(3000):
        record = _random_record(rng, i)
        record.ingest_ts = rng.choice([None, 7])
        ours = _parsed(encode_records([record], "agent")[0])
        assert ours == _parsed(_reference(record, "agent")), record


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("value_long", 2**63),
        ("seq", -(2**63) - 1),
        ("value_long", 1.5),
        ("value_double", "1.5"),
        ("value_string", 5),
        ("value_raw", "\ud800"),  # a lone surrogate has no UTF-8 form
        ("record_id", b"bytes"),
        ("edge_ts", None),
        ("tag_id", None),
    ],
)
def test_a_value_that_fits_no_column_is_a_clear_error(column: str, value: object) -> None:
    record = make_records(1)[0].finalize()
    setattr(record, column, value)
    with pytest.raises(ValueError, match="from source 'plc1' cannot be encoded"):
        Spool.encode([record])


def test_more_distinct_tags_than_the_cache_holds_still_encode_right(monkeypatch: pytest.MonkeyPatch) -> None:
    from iot_connector import model_wire

    monkeypatch.setattr(model_wire, "_CACHE_LIMIT", 5)
    monkeypatch.setattr(model_wire, "_tag_cache", {})
    records = [r.finalize() for r in make_records(40, tags=20)]
    for record in records:
        assert _parsed(model_wire.encode_many([record])[0]) == _parsed(_core_reference(record))
    assert len(model_wire._tag_cache) <= 5


def _core_reference(record: Record) -> bytes:
    msg = _parsed(_reference(record, "x"))
    for name in ("agent_id", "schema_version", "ingest_ts", "is_replayed"):
        msg.ClearField(name)
    return msg.SerializeToString()
