"""Rejected messages: counted per source as malformed_payload and kept in a size-capped file in the spool folder."""

from __future__ import annotations

import base64
from pathlib import Path

import orjson

from iot_connector.config.models import PipelineSettings
from iot_connector.pipeline import Pipeline, make_buffer
from iot_connector.pipeline.deadletters import FILE_NAME, PREVIOUS_NAME, DeadLetters
from tests.edge.helpers import RecordingSink


def test_a_rejection_is_counted_for_its_source_and_kept_with_topic_reason_and_payload(tmp_path: Path) -> None:
    settings = PipelineSettings()
    pipe = Pipeline(
        settings, RecordingSink(), make_buffer(settings, tmp_path), dead_letters=DeadLetters(tmp_path, 1 << 20)
    )
    pipe.reject(
        "line1", "topic plant/t", "timestamp 1e+308 (ms) is not a finite number of microseconds", b'{"ts":1e308}'
    )
    pipe.reject("line1", "topic plant/t", "not JSON", b"\xff")
    pipe.reject("press", "register hr:0:float32:ABCD", "struct.error: ...", None)
    pipe.dead_letters.close()  # type: ignore[union-attr]
    failed = pipe.metrics.records_failed
    assert failed.labels(error_type="malformed_payload", source="line1")._value.get() == 2
    assert failed.labels(error_type="malformed_payload", source="press")._value.get() == 1
    entries = [orjson.loads(line) for line in (tmp_path / FILE_NAME).read_bytes().splitlines()]
    assert [(e["source"], e["where"]) for e in entries] == [
        ("line1", "topic plant/t"),
        ("line1", "topic plant/t"),
        ("press", "register hr:0:float32:ABCD"),
    ]
    assert entries[0]["reason"].startswith("timestamp 1e+308")
    assert base64.b64decode(entries[1]["payload_b64"]) == b"\xff"
    assert "payload_b64" not in entries[2]


def test_the_file_is_capped_keeping_one_previous_file(tmp_path: Path) -> None:
    letters = DeadLetters(tmp_path, 4096)
    for i in range(200):
        letters.write("s", f"topic t/{i}", "bad", b"x" * 100)
    letters.close()
    current, previous = tmp_path / FILE_NAME, tmp_path / PREVIOUS_NAME
    assert current.stat().st_size <= 4096
    assert previous.stat().st_size <= 4096
    assert orjson.loads(current.read_bytes().splitlines()[-1])["where"] == "topic t/199"  # the newest is kept
    assert letters.written == 200
