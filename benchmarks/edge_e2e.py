"""End to end: a real source -> Pipeline with the durable spool (fsync) -> sink ACKNOWLEDGEMENT, per protocol.

Peers run in their own processes (Debian mosquitto, an asyncua Server, a pymodbus TCP server; see
edge_sources.py); sinks are the ZeroBus gRPC double driven by the real SDK and a local Delta table (delta-rs).
For each case it prints records/s flat out (counted when the sink acknowledged them) and the p99 latency from
the source (MQTT publish time / OPC UA SourceTimestamp / poll read time) to the sink's ack at the deployment
guide's rate, beside the guide's figures and the issue's targets, and the agent process's CPU time per
delivered record in the flat-out run (all its threads; steadier than records/s on a shared machine), and the
share of one core it uses at the guide's rate (what the latency costs). The ZeroBus double runs in its own process too. Baseline, same run, same peer: the source
alone into a counting emit (no spool, no sink); "vs source" = what the pipeline and the sink keep of it.

The p99 is printed twice: from the source timestamp, and from the agent's read (`edge_ts`, the agent's
own share), with the median beside the first.

    .venv/bin/python benchmarks/edge_e2e.py [--only mqtt,opcua,modbus] [--into source,zerobus,delta]
        [--seconds 3] [--wait-ms 10] [--src /tmp/old/src]

`--src` runs another tree's agent code (sources, pipeline, sinks) with this script: compare trees in the
same minutes, e.g. `git archive <rev> src | tar -x -C /tmp/old` for the one before a change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
if __name__ == "__main__" and "--src" in sys.argv:  # another tree's agent, e.g. `git archive <rev> src` in /tmp
    sys.path.insert(0, str(Path(sys.argv[sys.argv.index("--src") + 1]).resolve()))
os.environ.setdefault("RUST_LOG", "warn")
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

from edge_sources import (
    JSON_TOPIC,
    MODBUS_SERVER,
    OPCUA_SERVER,
    PLANT,
    SESSION,
    free_port,
    p99,
    peer,
    persistent_session,
    publish,
    wait_port,
)
from iot_connector.config.models import PipelineSettings, ZerobusSinkSettings
from iot_connector.model import Record, now_us
from iot_connector.pipeline import Pipeline, make_buffer
from iot_connector.sinks.base import Sink
from iot_connector.sinks.delta import DeltaSink
from iot_connector.sinks.zerobus import ZerobusSink
from iot_connector.sources.base import Source
from iot_connector.sources.modbus import ModbusConfig, ModbusSource
from iot_connector.sources.mqtt import MqttConfig, MqttSource
from iot_connector.sources.opcua import OpcuaConfig, OpcuaSource

Emit = Callable[[Sequence[Record]], object]
MakeSource = Callable[[Emit], Source]


def p50(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


class Counter:
    """Counts delivered records (at the sink ack, or at emit for the baseline) and samples latency in ms."""

    def __init__(self, ts_field: str) -> None:
        self.ts_field = ts_field
        self.count = 0
        self.first = self.last = 0.0
        self.latencies: list[float] = []
        self.agent_latencies: list[float] = []  # from edge_ts (the agent read it): the agent's own share

    def __call__(self, records: Sequence[Record]) -> None:
        now = time.perf_counter()
        self.first = self.first or now
        self.count += len(records)
        self.last = now
        wall = now_us()
        for rec in records[:: max(1, len(records) // 50)]:
            ts = getattr(rec, self.ts_field)
            if ts is not None:
                self.latencies.append((wall - ts) / 1000)
            self.agent_latencies.append((wall - rec.edge_ts) / 1000)

    async def emit(self, records: Sequence[Record]) -> None:  # the baseline's emit: no spool, no sink
        self(records)


@dataclass
class Run:
    """How to end one measurement: after `expected` records (a backlog), or a warm-up plus a time window."""

    expected: int = 0
    warmup: float = 0.5
    seconds: float = 3.0
    before: Callable[[], None] | None = None  # e.g. start a paced publisher (in a thread) once connected


async def measure(
    make_source: MakeSource, sink: Sink | None, ts_field: str, run: Run, args
) -> tuple[float, tuple[float, float, float], float]:
    """(records/s, p99 ms from `ts_field` and from edge_ts and p50 from `ts_field`, agent CPU µs per record) of `make_source` through
    the spooled pipeline into `sink`, or alone if sink is None. The CPU is this process's (all threads: the
    SDK's, delta-rs', the fsync's)."""
    counter = Counter(ts_field)
    pipe = None
    emit: Emit = counter.emit
    if sink is not None:
        settings = PipelineSettings.model_validate(
            {"batch_max_records": args.batch, "batch_max_wait_ms": args.wait_ms, "spool": {"durability": "fsync"}}
        )
        spool_dir = Path(tempfile.mkdtemp(dir=args.work, prefix="spool-"))
        pipe = Pipeline(settings, sink, make_buffer(settings, spool_dir), on_delivered=counter)
        await pipe.start()
        emit = pipe.emit
    source = make_source(emit)
    task = asyncio.create_task(source.run())
    extra = asyncio.create_task(asyncio.sleep(0))
    try:
        if run.expected:
            deadline = time.monotonic() + 180
            cpu0 = time.process_time()
            while counter.count < run.expected and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            rate = counter.count / (counter.last - counter.first) if counter.last > counter.first else 0.0
            cpu = (time.process_time() - cpu0) / max(counter.count, 1)
        else:
            await asyncio.sleep(run.warmup)
            if run.before:
                extra = asyncio.create_task(asyncio.to_thread(run.before))
            count0, t0, cpu0 = counter.count, time.perf_counter(), time.process_time()
            counter.latencies.clear()
            counter.agent_latencies.clear()
            await asyncio.sleep(run.seconds)
            rate = (counter.count - count0) / (time.perf_counter() - t0)
            cpu = (time.process_time() - cpu0) / max(counter.count - count0, 1)
        await extra
        latency = (p99(counter.latencies), p99(counter.agent_latencies), p50(counter.latencies))
    finally:
        await source.stop()
        await asyncio.wait_for(task, 15)
        if pipe is not None:
            await pipe.stop()
    return rate, latency, cpu * 1e6


@dataclass
class Case:
    name: str
    unit: str
    guide: str
    target: str
    make_source: MakeSource
    ts_field: str  # the source timestamp the latency is measured from
    flat: Run
    paced: Run
    paced_make_source: MakeSource | None = None
    paced_ts_field: str | None = None
    prepare: Callable[[], None] | None = None  # before each flat-out run (e.g. queue a backlog)


# The ZeroBus double in its own process, like the real service (it must not share the agent's GIL).
ZEROBUS_PEER = r"""
import sys
sys.path.insert(0, sys.argv[1])
from tests.edge.zerobus_double import ZerobusDouble
zb = ZerobusDouble().start()
print(zb.endpoint, zb.workspace_url, zb.client_id, zb.client_secret, flush=True)
sys.stdin.read()
"""


@dataclass
class ZerobusPeer:
    endpoint: str
    workspace_url: str
    client_id: str
    client_secret: str


@contextlib.contextmanager
def zerobus_peer():
    repo = str(Path(__file__).resolve().parents[1])
    args = [sys.executable, "-c", ZEROBUS_PEER, repo]
    with peer(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        yield ZerobusPeer(*proc.stdout.readline().split())


def sink_factories(zb: ZerobusPeer, work: Path) -> dict[str, Callable[[], Sink | None]]:
    settings = ZerobusSinkSettings(
        workspace_url=zb.workspace_url,
        zerobus_endpoint=zb.endpoint,
        client_id=zb.client_id,
        client_secret=zb.client_secret,
        table="main.edge.e2e",
    )
    return {
        "source": lambda: None,
        "-> ZeroBus": lambda: ZerobusSink(settings, agent_id="bench"),
        "-> Delta": lambda: DeltaSink(Path(tempfile.mkdtemp(dir=work, prefix="delta-")), agent_id="bench"),
    }


async def run_case(case: Case, sinks: dict[str, Callable[[], Sink | None]], args) -> None:
    base_rate = 0.0
    for label, make_sink in sinks.items():
        if case.prepare:
            await asyncio.to_thread(case.prepare)
        rate, _, cpu = await measure(case.make_source, make_sink(), case.ts_field, case.flat, args)
        paced_rate, (lat, agent_lat, median), paced_cpu = await measure(
            case.paced_make_source or case.make_source,
            make_sink(),
            case.paced_ts_field or case.ts_field,
            case.paced,
            args,
        )
        base_rate = base_rate or rate
        print(
            f"| {case.name} | {label} | {rate:,.0f} {case.unit}/s | {rate / base_rate:.2f}x | {cpu:.1f} µs |"
            f" {lat:.1f} ms (p50 {median:.1f}) | {agent_lat:.1f} ms | {paced_cpu * paced_rate / 1e4:.0f} % |"
            f" {case.guide} | {case.target} |",
            flush=True,
        )


def mqtt_cases(port: int, seconds: float) -> list[Case]:
    url = f"mqtt://127.0.0.1:{port}"
    n = int(20_000 * seconds)
    drain = MqttConfig(
        name="bench", url=url, protocol_version="3.1.1", client_id=SESSION, clean_start=False, topics=[JSON_TOPIC]
    )
    live = MqttConfig(name="bench", url=url, topics=[JSON_TOPIC])
    m20 = max(1_000, n // 10)
    return [
        Case(
            "MQTT JSON, 1 value/message (QoS 1)",
            "records",
            "5,000/s, p99 10 ms",
            "≥ 50,000 records/s",
            lambda emit: MqttSource(drain, emit),
            "source_ts",
            Run(expected=n),
            Run(seconds=seconds, before=lambda: publish(port, "json", int(5_000 * seconds), 5_000, 0)),
            lambda emit: MqttSource(live, emit),
            prepare=lambda: publish(port, "json", n),
        ),
        Case(
            "MQTT JSON, 20 values/message (batched)",
            "records",
            "5,000/s, p99 10 ms",
            "≥ 50,000 records/s",
            lambda emit: MqttSource(drain, emit),
            "source_ts",
            Run(expected=m20 * 20),
            Run(seconds=seconds, before=lambda: publish(port, "json20", int(250 * seconds), 250, 0)),
            lambda emit: MqttSource(live, emit),
            prepare=lambda: publish(port, "json20", m20),
        ),
    ]


def opcua_cases(endpoint: str, seconds: float) -> list[Case]:
    def cfg(n: int, **update) -> OpcuaConfig:
        nodes = [{"id": f"nsu={PLANT};s=v{i}", "name": f"v{i}"} for i in range(n)]
        base = {"publishing_interval_ms": 50, "timeout_s": 20, "monitoring": {"sampling_interval_ms": 0}}
        return OpcuaConfig(name="bench", endpoint=endpoint, nodes=nodes, **{**base, **update})

    sub_all, sub_50 = cfg(1000), cfg(50)  # the server rewrites every node at 20 Hz: 50 nodes = 1,000 values/s
    poll_all = cfg(1000, mode="poll", poll_interval_s=0.001)
    poll_100 = cfg(100, mode="poll", poll_interval_s=0.1)  # 1,000 values/s
    return [
        Case(
            "OPC UA subscription, 1,000 nodes at 20 Hz",
            "values",
            "1,000/s, p99 50 ms",
            "≥ 10,000 values/s",
            lambda emit: OpcuaSource(sub_all, emit),
            "source_ts",
            Run(warmup=3, seconds=seconds),
            Run(warmup=3, seconds=seconds),
            lambda emit: OpcuaSource(sub_50, emit),
        ),
        Case(
            "OPC UA polling (Read), 1,000 nodes",
            "values",
            "1,000/s, p99 50 ms",
            "≥ 10,000 values/s",
            lambda emit: OpcuaSource(poll_all, emit),
            "edge_ts",
            Run(warmup=2, seconds=seconds),
            Run(warmup=2, seconds=seconds),
            lambda emit: OpcuaSource(poll_100, emit),
        ),
    ]


def modbus_cases(port: int, seconds: float) -> list[Case]:
    url = f"modbus+tcp://127.0.0.1:{port}"

    def cfg(n: int, interval: float) -> ModbusConfig:
        tags = [{"name": f"r{i}", "address": i, "data_type": "uint16"} for i in range(n)]
        return ModbusConfig(name="bench", url=url, poll_interval_s=interval, registers=tags)

    flat, paced = cfg(2000, 0.001), cfg(50, 0.1)  # 50 registers at 10 Hz = 500 registers/s
    return [
        Case(
            "Modbus TCP, 2,000 uint16 holding registers",
            "registers",
            "500/s, p99 100 ms",
            "≥ 50,000 registers/s",
            lambda emit: ModbusSource(flat, emit),
            "edge_ts",
            Run(seconds=seconds),
            Run(seconds=seconds),
            lambda emit: ModbusSource(paced, emit),
        )
    ]


BROKER_PIDS: dict[int, int] = {}  # port -> the mosquitto process, whose CPU time edge_backlog.py reads


@contextlib.contextmanager
def mosquitto(tmp: Path):
    port = free_port()
    conf = tmp / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nuser root\n"
        "max_queued_messages 0\nmax_inflight_messages 0\n"
    )
    with peer(["/usr/sbin/mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL) as proc:
        BROKER_PIDS[port] = proc.pid
        wait_port(port)
        persistent_session(port, "bench/#")
        yield port


@contextlib.contextmanager
def opcua_server():
    port = free_port()
    with peer([sys.executable, "-c", OPCUA_SERVER, str(port), "1000", "20"], stdout=subprocess.PIPE, text=True) as p:
        assert p.stdout is not None
        if "ready" not in p.stdout.readline():
            raise SystemExit("OPC UA bench server did not start")
        yield f"opc.tcp://127.0.0.1:{port}/bench/"


@contextlib.contextmanager
def modbus_server():
    port = free_port()
    with peer([sys.executable, "-c", MODBUS_SERVER, str(port)]):
        wait_port(port)
        yield port


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="mqtt,opcua,modbus")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--batch", type=int, default=5_000, help="pipeline batch_max_records")
    parser.add_argument("--wait-ms", type=float, default=10, help="pipeline batch_max_wait_ms")
    parser.add_argument("--into", default="source,zerobus,delta", help="the sinks (source: the source alone)")
    parser.add_argument("--src", help="run the agent code of this source tree (read before the imports)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # asyncua's per-session notices would break the table
    print(
        f"# edge end to end — {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {os.cpu_count()} CPU,"
        f" Python {platform.python_version()}, spool fsync, batch {args.batch}, wait {args.wait_ms:g} ms,"
        f" load {os.getloadavg()[0]:.1f}, agent code {Path(Pipeline.__module__ and sys.modules['iot_connector'].__file__).parent}"
    )
    print(
        "| case | into | flat out | vs source | agent CPU/record | p99 source→ack at guide rate"
        " | p99 read→ack (agent only) | agent CPU at guide rate (of one core) | guide (2 CPU) | target |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp, zerobus_peer() as zb:
        args.work = Path(tmp)
        into = args.into.split(",")  # "vs source" is relative to the first one kept
        sinks = {k: v for k, v in sink_factories(zb, args.work).items() if k.split()[-1].lower() in into}
        only = args.only.split(",")
        if "mqtt" in only:
            with mosquitto(args.work) as port:
                for case in mqtt_cases(port, args.seconds):
                    await run_case(case, sinks, args)
        if "opcua" in only:
            with opcua_server() as endpoint:
                for case in opcua_cases(endpoint, args.seconds):
                    await run_case(case, sinks, args)
        if "modbus" in only:
            with modbus_server() as port:
                for case in modbus_cases(port, args.seconds):
                    await run_case(case, sinks, args)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
