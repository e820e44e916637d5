"""The agent as users run it draining an MQTT backlog, beside Debian's `mosquitto_sub` draining the same one.

`iot-connector run` (a process, its default configuration: spool fsync, batches of 5,000, MQTT 5) with one
MQTT source on a persistent session (`clean_start: false`, fixed `client_id`) and, in turn, the local Delta
sink and the ZeroBus sink (the ZeroBus double, in its own process). Per sink, in the same run:
1. both sessions exist on the broker (the agent's and mosquitto_sub's: subscribed once, disconnected);
2. start-up, measured separately: one message is queued, the agent is started and the time until the sink
   acknowledged it is taken from the agent's metrics (process start, imports, spool, sink, MQTT connect);
3. `--messages` QoS 1 messages are published (queued for both sessions);
4. `mosquitto_sub -c -q 1 -C N > /dev/null` drains its copy: the broker's own delivery rate, the physical
   limit here (its start-up, measured on one message, is taken off);
5. the agent is started again and drains its copy into the sink; `iot_records_written_total` (records
   the sink acknowledged) is polled every `--poll-ms`. Drain time = first record read → last record
   acknowledged, so start-up is excluded.
Steps 3-5 repeat `--rounds` times. The Delta run also checks the table: every message one row, distinct
record_ids. `--profile DIR` runs the draining agent under cProfile.

`--src A,B` compares agents from several source trees in the same run (e.g. `git archive <rev> src` unpacked
in /tmp): each tree's agent has its own persistent session and config folder, one publish queues the
backlog for all of them and mosquitto_sub, and they drain in turn (the order alternates per round). CPU per
message is printed for the agent process, for its main (event-loop) thread, and for the broker while each
drain runs: on a shared machine those are the figures to compare, the rates move with the load; on 2 cores
the broker's share is what the agent cannot have.

    .venv/bin/python benchmarks/edge_backlog.py [--messages 200000] [--rounds 2] [--sinks delta,zerobus]
        [--src /tmp/old/src,src]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")

from edge_e2e import BROKER_PIDS, ZerobusPeer, mosquitto, zerobus_peer
from edge_sources import JSON_TOPIC, SESSION, free_port, publish

REPO = Path(__file__).resolve().parents[1]
MOSQUITTO_SUB = "/usr/bin/mosquitto_sub"
SUB_SESSION = "bench-mosquitto-sub"
_SAMPLE = re.compile(rb"^(iot_records_(?:read|written)_total)\{[^}]*\} ([0-9.e+]+)$", re.M)


def agent_config(port: int, sink: dict, client_id: str = SESSION) -> dict:
    """Only what a user must set for this: the broker, a persistent session, the topic, the sink."""
    source = {
        "name": "plant",
        "type": "mqtt",
        "url": f"mqtt://127.0.0.1:{port}",
        "client_id": client_id,
        "clean_start": False,
        "topics": [JSON_TOPIC],
    }
    return {"sink": sink, "sources": [source]}


def zerobus_sink(zb: ZerobusPeer) -> dict:
    return {
        "type": "zerobus",
        "workspace_url": zb.workspace_url,
        "zerobus_endpoint": zb.endpoint,
        "client_id": zb.client_id,
        "client_secret": zb.client_secret,
        "table": "main.edge.backlog",
    }


def counters(metrics_port: int) -> tuple[float, float] | None:
    """(records read, records written) from the agent's /metrics, or None while it is not serving yet."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2) as response:
            text = response.read()
    except OSError:
        return None
    totals = {b"iot_records_read_total": 0.0, b"iot_records_written_total": 0.0}
    for name, value in _SAMPLE.findall(text):
        totals[name] += float(value)
    return totals[b"iot_records_read_total"], totals[b"iot_records_written_total"]


@dataclass
class AgentRun:
    total_s: float  # process start -> `expected` records acknowledged
    first_read_s: float  # process start -> first poll that saw a record read
    cpu_s: float  # the agent process's CPU time (user + system) from the first record read to the end
    main_cpu_s: float  # the same for its main thread (the event loop) alone

    @property
    def drain_s(self) -> float:
        return self.total_s - self.first_read_s


def run_agent(
    config_dir: Path,
    expected: int,
    poll_s: float,
    profile: Path | None = None,
    timeout: float = 300,
    src: Path | None = None,
) -> AgentRun:
    """`iot-connector run` until the sink acknowledged `expected` records, then SIGTERM (a clean stop).
    With `profile`, under cProfile writing there (slower: compare only profiles with each other); with `src`,
    the agent of that source tree (first on its PYTHONPATH)."""
    metrics_port = free_port()
    python = [sys.executable, *(["-m", "cProfile", "-o", str(profile)] if profile else [])]
    args = [*python, "-m", "iot_connector.cli", "run", "--config-dir", str(config_dir)]
    log = (config_dir / "agent.log").open("a")
    start = time.perf_counter()
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [env.get("PYTHONPATH")])])
    cmd = [*args, "--metrics-port", str(metrics_port)]
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=log, stdout=log, env=env)
    first_read = cpu0 = main0 = 0.0
    try:
        deadline = start + timeout
        while True:
            now = time.perf_counter()
            seen = counters(metrics_port)
            if seen is not None:
                read, written = seen
                if read and not first_read:
                    first_read, cpu0, main0 = now - start, _cpu_seconds(proc.pid), _cpu_seconds(proc.pid, main=True)
                if written >= expected:
                    total = now - start
                    break
            if now > deadline or proc.poll() is not None:
                raise SystemExit(f"agent: {seen} records (read, written) of {expected}; see {config_dir / 'agent.log'}")
            time.sleep(poll_s)
        cpu, main_cpu = _cpu_seconds(proc.pid) - cpu0, _cpu_seconds(proc.pid, main=True) - main0
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)
        log.close()
    return AgentRun(total, first_read, cpu, main_cpu)


def _cpu_seconds(pid: int, main: bool = False) -> float:
    """CPU time of the process (all threads), or of its main thread alone."""
    stat = Path(f"/proc/{pid}/task/{pid}/stat" if main else f"/proc/{pid}/stat")
    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class SubRun:
    total_s: float  # process start -> exit
    drain_s: float  # total_s less mosquitto_sub's own start-up (connect, subscribe: measured on 1 message)


def mosquitto_sub(port: int, count: int, startup_s: float = 0.0) -> SubRun:
    """Debian's mosquitto_sub on its persistent session (`-c`, QoS 1) until `count` messages, printing them to
    /dev/null: a pipe read by this script would slow it down (~1.3x here) and flatter the agent; 0: subscribe
    (creating the session) and exit."""
    args = [MOSQUITTO_SUB, "-h", "127.0.0.1", "-p", str(port), "-i", SUB_SESSION, "-c", "-q", "1", "-t", "bench/#"]
    start = time.perf_counter()
    done = subprocess.run([*args, *(["-C", str(count)] if count else ["-E"])], stdout=subprocess.DEVNULL, timeout=300)
    total = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"mosquitto_sub exited {done.returncode} before {count} messages")
    return SubRun(total, max(total - startup_s, 1e-6))


def delta_rows(config_dir: Path) -> tuple[int, int]:
    """(rows, distinct record_ids) of the agent's default Delta table."""
    from deltalake import DeltaTable

    ids = DeltaTable(str(config_dir / "data" / "iot_records")).to_pyarrow_table(columns=["record_id"])["record_id"]
    return len(ids), len(set(ids.to_pylist()))


def agent_session(port: int, client_id: str) -> None:
    """The agent's persistent session on the broker (QoS 1 subscription), so a publish queues for it."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=False)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(JSON_TOPIC["topic"], 1)
    time.sleep(0.3)
    client.disconnect()
    client.loop_stop()


def bench_sink(name: str, sink: dict, port: int, work: Path, args: argparse.Namespace) -> dict[str, list[float]]:
    """Rows of the table for one sink, a round each (and a tree each); returns the ratios per tree."""
    n = args.messages
    trees: list[Path | None] = args.src or [None]
    dirs, startups = [], []
    mosquitto_sub(port, 0)  # its session: subscribed once, then gone
    for i in range(len(trees)):
        config_dir = work / f"{name}-{i}"
        config_dir.mkdir()
        client_id = SESSION if i == 0 else f"{SESSION}-{i}"
        (config_dir / "connector.yaml").write_text(json.dumps(agent_config(port, sink, client_id)))  # JSON is YAML
        agent_session(port, client_id)
        dirs.append(config_dir)
    publish(port, "json", 1)
    for config_dir, src in zip(dirs, trees):
        startups.append(run_agent(config_dir, 1, args.poll_ms / 1000, src=src))
    sub_startup = mosquitto_sub(port, 1).total_s
    ratios: dict[str, list[float]] = {}
    for round_ in range(1, args.rounds + 1):
        t0 = time.perf_counter()
        publish(port, "json", n)  # queued for every session
        published = time.perf_counter() - t0
        load = os.getloadavg()[0]
        broker0 = _cpu_seconds(BROKER_PIDS[port])
        sub = mosquitto_sub(port, n, sub_startup)
        broker_sub = _cpu_seconds(BROKER_PIDS[port]) - broker0
        order = list(range(len(trees)))
        if round_ % 2 == 0:
            order.reverse()
        for i in order:
            src, label = trees[i], str(trees[i] or "this tree")
            profile = args.profile / f"{name}-{i}.prof" if args.profile else None
            broker0 = _cpu_seconds(BROKER_PIDS[port])
            agent = run_agent(dirs[i], n, args.poll_ms / 1000, profile, src=src)
            broker = _cpu_seconds(BROKER_PIDS[port]) - broker0
            ratio = sub.drain_s / agent.drain_s
            ratios.setdefault(label, []).append(ratio)
            print(
                f"| {name} #{round_} | {label} | {n:,} | {sub.drain_s:.2f} s ({n / sub.drain_s:,.0f}/s; {sub.total_s:.2f} s"
                f" with start) | {agent.drain_s:.2f} s ({n / agent.drain_s:,.0f}/s; {agent.total_s:.2f} s with start)"
                f" | **{ratio:.2f}×** | {startups[i].total_s:.2f} s | {agent.cpu_s / n * 1e6:.1f} µs"
                f" | {agent.main_cpu_s / n * 1e6:.1f} µs | {broker_sub / n * 1e6:.1f} / {broker / n * 1e6:.1f} µs"
                f" | {load:.1f} |",
                flush=True,
            )
        print(f"<!-- {name} #{round_}: {n:,} published in {published:.1f} s -->", flush=True)
    if name == "delta":
        for i, config_dir in enumerate(dirs):
            rows, distinct = delta_rows(config_dir)
            sent = args.rounds * n + 1
            print(f"<!-- delta table {i}: {rows:,} rows, {distinct:,} distinct record_ids, {sent:,} sent -->")
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=200_000)
    parser.add_argument("--sinks", default="delta,zerobus")
    parser.add_argument("--rounds", type=int, default=2, help="backlogs drained per sink (the machine is shared)")
    parser.add_argument("--poll-ms", type=float, default=50, help="how often the agent's /metrics is read")
    parser.add_argument("--profile", type=Path, help="run the draining agent under cProfile, <sink>-<i>.prof here")
    parser.add_argument(
        "--src", help="comma-separated source trees whose agents drain in turn (default: the installed one)"
    )
    args = parser.parse_args()
    args.src = [Path(p).resolve() for p in args.src.split(",")] if args.src else None
    if not Path(MOSQUITTO_SUB).exists():
        raise SystemExit(f"{MOSQUITTO_SUB} is missing: apt-get install mosquitto-clients (the baseline)")
    print(
        f"# edge backlog — {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, {os.cpu_count()} CPU,"
        f" Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}"
    )
    print(
        "| sink | agent tree | backlog | mosquitto_sub drain | agent drain (`iot-connector run`) | agent / mosquitto_sub"
        " | agent start-up (to 1st ack) | agent CPU/message | main thread CPU/message"
        " | broker CPU/message (mosquitto_sub / agent drain) | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp, zerobus_peer() as zb:
        work = Path(tmp)
        sinks: dict[str, Callable[[], dict]] = {
            "delta": lambda: {"type": "delta"},
            "zerobus": lambda: zerobus_sink(zb),
        }
        with mosquitto(work) as port:
            for name in args.sinks.split(","):
                for label, values in bench_sink(name, sinks[name](), port, work, args).items():
                    median = statistics.median(values)
                    print(f"<!-- {name}, {label}: median agent / mosquitto_sub {median:.2f}× -->", flush=True)


if __name__ == "__main__":
    main()
