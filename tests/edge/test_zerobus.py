"""ZeroBus sink with the REAL SDK against the local gRPC double: plaintext, TLS, outage -> spool -> drain."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from iot_connector.config.models import PipelineSettings, ZerobusSinkSettings
from iot_connector.pipeline import Pipeline, make_buffer
from iot_connector.sinks.base import SinkError
from iot_connector.sinks.zerobus import ZerobusSink, chunks_by_size
from tests.edge.helpers import make_records
from tests.edge.zerobus_double import ZerobusDouble

pytestmark = pytest.mark.integration
TABLE = "main.edge.iot_records"
REQUIRED_SINK_KEYS = ("workspace_url", "zerobus_endpoint", "client_id", "client_secret", "table")


@pytest.fixture
def double(monkeypatch: pytest.MonkeyPatch) -> Iterator[ZerobusDouble]:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with ZerobusDouble() as zb:
        yield zb


def sink_settings(zb: ZerobusDouble, **kw) -> ZerobusSinkSettings:
    base = {
        "workspace_url": zb.workspace_url,
        "zerobus_endpoint": zb.endpoint,
        "client_id": zb.client_id,
        "client_secret": zb.client_secret,
        "table": TABLE,
        "recovery_retries": 1,
        "recovery_backoff_ms": 100,
        "recovery_timeout_ms": 2000,
        "server_lack_of_ack_timeout_ms": 2000,
    }
    base.update(kw)
    return ZerobusSinkSettings.model_validate(base)


def _pipeline(tmp_path: Path, sink: ZerobusSink) -> Pipeline:
    settings = PipelineSettings.model_validate(
        {
            "batch_max_records": 100,
            "batch_max_wait_ms": 5,
            "retry": {"initial_backoff_s": 0.05, "max_backoff_s": 0.2, "jitter": 0},
            "breaker": {"failure_threshold": 3, "reset_timeout_s": 0.2},
        }
    )
    return Pipeline(settings, sink, make_buffer(settings, tmp_path / "spool"))


async def _until(predicate, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


async def _roundtrip(tmp_path: Path, zb: ZerobusDouble) -> None:
    pipe = _pipeline(tmp_path, ZerobusSink(sink_settings(zb), agent_id="edge-1"))
    await pipe.start()
    sent = make_records(300)
    sent[5].value_double, sent[5].value_long, sent[5].quality = None, 2**62, "BAD"
    for i in range(0, 300, 60):
        await pipe.emit(sent[i : i + 60])
    await _until(lambda: pipe.buffer.depth == 0)
    await pipe.stop()
    rows = zb.rows(TABLE)
    assert [int(r["seq"]) for r in rows] == list(range(300))
    row = rows[7]
    assert row["value_double"] == 7.0
    assert row["record_id"] == sent[7].record_id
    assert row["agent_id"] == "edge-1"
    assert row["attributes"] == {"unit_id": "1"}
    assert int(row["source_ts"]) == 1_700_000_000_000_007
    assert "value_double" not in rows[5]
    assert (int(rows[5]["value_long"]), rows[5]["quality"]) == (2**62, "BAD")
    assert zb.token_requests >= 1  # OAuth client-credentials path against the double's /oidc/v1/token
    descriptor = zb.descriptors[TABLE]
    assert [f.name for f in descriptor.field][:4] == ["record_id", "agent_id", "schema_version", "source_id"]


async def test_plaintext_roundtrip_with_real_sdk(tmp_path: Path, double: ZerobusDouble) -> None:
    await _roundtrip(tmp_path, double)


async def test_tls_roundtrip_with_real_sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    with ZerobusDouble(tls_dir=tmp_path / "tls") as zb:
        assert zb.endpoint.startswith("https://localhost:")
        monkeypatch.setenv("SSL_CERT_FILE", str(zb.ca_file))
        await _roundtrip(tmp_path, zb)


async def test_outage_spools_then_drains_in_order(tmp_path: Path, double: ZerobusDouble) -> None:
    pipe = _pipeline(tmp_path, ZerobusSink(sink_settings(double), agent_id="edge-1"))
    await pipe.start()
    await pipe.emit(make_records(200))
    await _until(lambda: pipe.buffer.depth == 0)
    double.down = True
    for i in range(200, 1000, 100):
        await pipe.emit(make_records(100, i))  # accepted into the spool while ZeroBus is down
    await _until(
        lambda: pipe.metrics.records_failed.labels(error_type="zerobus_unavailable", source="plc1")._value.get() > 0
    )
    assert pipe.buffer.depth > 0
    creates = double.creates
    double.down = False
    await _until(lambda: pipe.buffer.depth == 0, 60)
    await pipe.stop()
    seqs = [int(r["seq"]) for r in double.rows(TABLE)]
    first_seen = list(dict.fromkeys(seqs))
    assert first_seen == list(range(1000))  # nothing lost, in order; re-sends only repeat (same record_id)
    ids = {r["record_id"] for r in double.rows(TABLE)}
    assert len(ids) == 1000
    assert double.creates > creates  # the failed stream was replaced by a new one


async def test_non_retriable_error_is_reported_and_records_kept(tmp_path: Path, double: ZerobusDouble) -> None:
    double.reject_create = grpc.StatusCode.NOT_FOUND
    pipe = _pipeline(tmp_path, ZerobusSink(sink_settings(double), agent_id="edge-1"))
    await pipe.start()
    await pipe.emit(make_records(50))
    await _until(
        lambda: pipe.metrics.records_failed.labels(error_type="zerobus_non_retriable", source="plc1")._value.get() > 0
    )
    assert "main.edge.iot_records" in (pipe.last_error or "")
    assert pipe.buffer.depth == 50
    double.reject_create = None  # the table was created: delivery resumes by itself
    await _until(lambda: pipe.buffer.depth == 0, 30)
    await pipe.stop()
    assert double.count(TABLE) == 50


async def test_wrong_secret_never_leaks(tmp_path: Path, double: ZerobusDouble, caplog) -> None:
    secret = "s3cr3t-never-in-logs"
    pipe = _pipeline(tmp_path, ZerobusSink(sink_settings(double, client_secret=secret), agent_id="edge-1"))
    await pipe.start()
    await pipe.emit(make_records(5))
    await _until(lambda: pipe.last_error is not None)
    await pipe.stop(drain_timeout_s=0)
    assert secret not in pipe.last_error
    assert secret not in caplog.text
    assert double.count(TABLE) == 0


def test_chunks_stay_under_payload_limit() -> None:
    payloads = [b"x" * 400] * 25
    groups = list(chunks_by_size(payloads, 1000))
    assert [len(g) for g in groups] == [2] * 12 + [1]
    assert [p for g in groups for p in g] == payloads


def test_table_name_must_have_three_parts(double: ZerobusDouble) -> None:
    with pytest.raises(ValueError, match=r"catalog\.schema\.table"):
        sink_settings(double, table="iot_records")


async def test_proxy_settings_reach_the_sdk(tmp_path: Path, double: ZerobusDouble, monkeypatch) -> None:
    """A configured proxy is used by the SDK (a closed proxy port fails), and no_proxy bypasses it."""
    for name in ("grpc_proxy", "https_proxy", "HTTPS_PROXY", "no_grpc_proxy", "no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "")  # restored after the test, whatever apply_proxy sets
    closed_proxy = {"url": "http://127.0.0.1:9"}
    through_proxy = ZerobusSink(sink_settings(double, proxy=closed_proxy), agent_id="edge-1")
    with pytest.raises(SinkError):
        await through_proxy.open()
    assert double.creates == 0
    bypass = ZerobusSink(sink_settings(double, proxy={**closed_proxy, "no_proxy": "127.0.0.1,localhost"}), "edge-1")
    await bypass.open()
    await bypass.write(make_records(3))
    await bypass.close()
    assert double.count(TABLE) == 3


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sink_extra", "outage_s"),
    [({}, 6.0), ({"recovery_retries": 0}, 12.0)],
    ids=["sdk-recovers-itself", "breaker-opens"],  # without the SDK's own retries 5 failures open the breaker
)
async def test_restart_under_load_data_flows_again_within_5_s(
    tmp_path: Path, double: ZerobusDouble, sink_extra: dict, outage_s: float
) -> None:
    """The double restarted on its ports after an outage while records keep coming; with the default
    pipeline settings (retry cap, breaker reset), rows arrive again within 5 s of it listening again."""
    required = {k: v for k, v in sink_settings(double).model_dump().items() if k in REQUIRED_SINK_KEYS}
    settings = PipelineSettings()
    sink = ZerobusSink(ZerobusSinkSettings(**required, **sink_extra), "edge-1")
    pipe = Pipeline(settings, sink, make_buffer(settings, tmp_path))
    await pipe.start()
    loop = asyncio.get_running_loop()
    sent = 0
    breaker_states: set[str] = set()

    async def load() -> None:  # 10,000 records/s into the pipeline, through the outage (the spool keeps them)
        nonlocal sent
        while True:
            await pipe.emit(make_records(100, sent))
            sent += 100
            breaker_states.add(pipe.breaker.state)
            await asyncio.sleep(0.01)

    feeder = asyncio.create_task(load())
    try:
        await _until(lambda: double.count(TABLE) >= 2000)
        double.stop()
        await asyncio.sleep(outage_s)
        before = double.count(TABLE)
        double.start()
        back_at = loop.time()
        await _until(lambda: double.count(TABLE) > before, 15)
        took = loop.time() - back_at
        print(f"ZeroBus double: rows again {took:.2f}s after it was back")
        assert took < 5.0, f"rows again {took:.2f}s after ZeroBus was back"
    finally:
        feeder.cancel()
        await asyncio.gather(feeder, return_exceptions=True)
        await pipe.stop()
    assert ("open" in breaker_states) == bool(sink_extra)
