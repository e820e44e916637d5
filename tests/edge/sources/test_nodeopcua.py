"""The OPC UA source against node-opcua, a second OPC UA stack no one here wrote: 20 variables in namespace
urn:nodeopcua:plant subscribed by `nsu=` ids over the anonymous and the secured endpoint (Basic256Sha256,
SignAndEncrypt, each side trusting the other's certificate), refusals when either side does not trust the
other, and a server restart after which data flows again within 5 s."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from iot_connector.model import Record
from iot_connector.sources.opcua import OpcuaConfig, OpcuaSource
from iot_connector.sources.opcua.certificates import generate_certificate
from tests.edge.sources.helpers import Collector, running
from tests.edge.sources.nodeopcua import COUNTER, VARIABLES, NodeOpcuaServer, node_id, served
from tests.edge.sources.test_peer_restart import OUTAGE_S, resumed_within

pytestmark = [pytest.mark.integration, pytest.mark.slow]
AGENT_URI = "urn:iot-connector:client"


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The agent's client certificate, made before the server starts so the server can trust it."""
    directory = tmp_path_factory.mktemp("agent")
    generate_certificate(directory / "cert.der", directory / "key.pem", AGENT_URI)
    return directory


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, pki: Path) -> Iterator[NodeOpcuaServer]:
    server = NodeOpcuaServer(tmp_path_factory.mktemp("nodeopcua"), trusted_clients=[pki / "cert.der"]).start()
    yield server
    server.stop()


def config(server: NodeOpcuaServer, pki: Path | None = None, **extra) -> OpcuaConfig:
    """All 20 variables by nsu= id; with `pki`, the secured endpoint trusting the server's certificate."""
    if pki is not None:
        extra = {
            "security_policy": "Basic256Sha256",
            "security_mode": "SignAndEncrypt",
            "application_uri": AGENT_URI,
            "cert_file": str(pki / "cert.der"),
            "key_file": str(pki / "key.pem"),
            "trusted_server_certs": [str(server.cert_der)],
        } | extra
    return OpcuaConfig(
        name="nodeopcua",
        endpoint=server.endpoint,
        publishing_interval_ms=100,
        nodes=[node_id(name) for name in VARIABLES],
        **extra,
    )


def value_of(record: Record) -> object:
    """The value a record carries, in the form VARIABLES gives it."""
    if record.value_raw is not None:  # arrays
        return orjson.loads(record.value_raw)
    if record.value_bool is not None:
        return record.value_bool
    if record.value_string is not None and record.data_type != "DateTime":
        return record.value_string
    if record.value_long is not None:
        return record.value_long
    return record.value_double


async def delivers_what_the_server_serves(source: OpcuaSource, collector: Collector) -> None:
    async with running(source):
        await collector.wait_for(lambda recs: len({r.tag_id for r in recs}) == len(VARIABLES), timeout=30)
        counted = sum(1 for r in collector.records if r.tag_path == COUNTER)
        await collector.wait_for(lambda recs: sum(1 for r in recs if r.tag_path == COUNTER) >= counted + 5)
    latest = {r.tag_path: r for r in collector.records}
    assert {r.tag_id for r in collector.records} == {node_id(name) for name in VARIABLES}
    for name, (data_type, _) in VARIABLES.items():
        record = latest[name]
        assert (record.quality, record.data_type) == ("GOOD", data_type), name
        if name != COUNTER:
            assert value_of(record) == served(name), name
    counts = [r.value_long for r in collector.records if r.tag_path == COUNTER]
    assert counts == sorted(counts)  # the server counts up
    assert len(set(counts)) == len(counts)  # each value once
    assert source.health.rejected == 0


async def test_anonymous_endpoint_delivers_every_value_the_server_serves(server: NodeOpcuaServer) -> None:
    collector = Collector()
    await delivers_what_the_server_serves(OpcuaSource(config(server), collector), collector)


async def test_secured_endpoint_delivers_every_value_the_server_serves(server: NodeOpcuaServer, pki: Path) -> None:
    collector = Collector()
    source = OpcuaSource(config(server, pki), collector)
    assert "(Basic256Sha256/SignAndEncrypt)" in await source.test_connection()
    await delivers_what_the_server_serves(source, collector)


async def test_a_client_the_server_does_not_trust_is_refused(server: NodeOpcuaServer, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger"
    generate_certificate(stranger / "cert.der", stranger / "key.pem", AGENT_URI)
    collector = Collector()
    source = OpcuaSource(config(server, stranger), collector)
    async with running(source):
        for _ in range(200):
            if source.health.last_error and source.health.connect_attempts >= 2:
                break
            await asyncio.sleep(0.05)
    assert not collector.records
    assert source.health.reconnects == 0
    assert f"add cert_file {stranger / 'cert.der'} to its trusted list" in (source.health.last_error or "")


async def test_a_server_the_agent_does_not_trust_is_refused(server: NodeOpcuaServer, pki: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    generate_certificate(other / "cert.der", other / "key.pem", "urn:nodeopcua:test-server")
    source = OpcuaSource(config(server, pki, trusted_server_certs=[str(other / "cert.der")]), Collector())
    with pytest.raises(ConnectionError, match=r"cannot connect to opc\.tcp://.*BadCertificateUntrusted"):
        await source.test_connection()


@pytest.mark.parametrize("secured", [False, True], ids=["anonymous", "secured"])
async def test_server_restart_data_again_within_5_s(server: NodeOpcuaServer, pki: Path, secured: bool) -> None:
    collector = Collector()
    source = OpcuaSource(config(server, pki if secured else None), collector)
    async with running(source):
        await collector.wait_for(lambda recs: sum(1 for r in recs if r.tag_path == COUNTER) >= 20, timeout=30)
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(OUTAGE_S)
        before = len(collector.records)
        await asyncio.to_thread(server.start)
        back_at = asyncio.get_running_loop().time()
        await resumed_within(collector, before, back_at, "node-opcua server")
        restarted = len(collector.records)
        await collector.wait_for(lambda recs: sum(1 for r in recs[restarted:] if r.tag_path == COUNTER) >= 5)
    assert source.health.reconnects == 1
    counts = [r.value_long or 0 for r in collector.records if r.tag_path == COUNTER]
    assert min(counts[-5:]) < max(counts[:-5])  # values of the restarted server: its counter started again at 0
