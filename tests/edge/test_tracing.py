"""Optional OpenTelemetry tracing: off by default, harmless without the SDK, spans when an SDK is present."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

from iot_connector.agent import Agent
from iot_connector.config import ConfigError, load_config, parse_config
from iot_connector.config.models import PipelineSettings, TracingSettings
from iot_connector.pipeline import Pipeline, make_buffer
from iot_connector.pipeline.tracing import make_tracer
from tests.edge.helpers import RecordingSink, make_records


def _state(config_dir: Path, tracing: dict) -> None:
    state = {
        "agent_id": "edge-trace",
        "plugins": ["tests.edge.counter_source"],
        "metrics": {"enabled": False},
        "tracing": tracing,
        "pipeline": {"batch_max_records": 100, "batch_max_wait_ms": 10, "drain_timeout_s": 1},
        "sources": [{"name": "c1", "type": "counter", "limit": 250}],
    }
    (config_dir / "connector_state.json").write_text(json.dumps(state))


def test_tracing_is_off_by_default_and_bad_settings_are_named() -> None:
    assert parse_config({}).tracing.enabled is False
    assert make_tracer(TracingSettings()) is None
    with pytest.raises(ConfigError, match="exporter"):
        parse_config({"tracing": {"enabled": True, "exporter": "zipkin"}})


async def test_enabled_without_sdk_logs_once_and_the_data_flows(tmp_path: Path, caplog, monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.sdk", None)  # as on an install without the SDK: import fails
    _state(tmp_path, {"enabled": True})
    caplog.set_level(logging.WARNING)
    agent = Agent(load_config(tmp_path), tmp_path)
    assert agent.pipeline.tracer is None
    stop = asyncio.Event()
    running = asyncio.create_task(agent.run(stop))
    async with asyncio.timeout(30):
        while agent.metrics.records_written.labels(protocol="counter")._value.get() < 250:
            await asyncio.sleep(0.05)
    stop.set()
    await running
    lines = [r.getMessage() for r in caplog.records if "opentelemetry-sdk is not installed" in r.getMessage()]
    assert len(lines) == 1
    assert "running without tracing" in lines[0]
    seqs = DeltaTable(str(tmp_path / "data" / "iot_records")).to_pyarrow_table(columns=["seq"]).column(0)
    assert sorted(seqs.to_pylist()) == list(range(250))


async def test_spans_around_emit_send_and_commit(tmp_path: Path) -> None:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    settings = PipelineSettings.model_validate({"batch_max_records": 50, "batch_max_wait_ms": 5})
    sink = RecordingSink()
    pipe = Pipeline(settings, sink, make_buffer(settings, tmp_path / "spool"), tracer=provider.get_tracer("t"))
    await pipe.start()
    for start in range(0, 200, 50):
        await pipe.emit(make_records(50, start))
    async with asyncio.timeout(10):
        while len(sink.records) < 200:
            await asyncio.sleep(0.01)
    await pipe.stop()
    names = [s.name for s in exporter.get_finished_spans()]
    assert names.count("iot.emit") == 4
    sends = [s for s in exporter.get_finished_spans() if s.name == "iot.batch.send"]
    assert sum(s.attributes["records"] for s in sends) == 200
    assert "iot.spool.commit" in names
