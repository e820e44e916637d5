"""The image itself: the project's Dockerfile built by buildah (tools/container-image.sh) and run as UID 1000
with the four volumes from host directories, host networking, the image's own entrypoint and healthcheck.

What an operator sees: the GUI and the metrics answer, the HEALTHCHECK passes, an MQTT source added in the GUI
lands records in the volumes, a restart keeps the configuration, the password and the spool (nothing is
delivered twice), and nothing outside the volumes is written. `buildah run` stands in for `docker run`
(no daemon here); SIGTERM to the entrypoint's process is what `docker stop` sends to PID 1.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from deltalake import DeltaTable

from tests.deploy.container_layout import CONTAINER_UID, REPO, VOLUMES
from tests.edge.sources.helpers import free_port
from tests.edge.sources.mosquitto import Mosquitto, Publisher

# a cold build (debootstrap + pip in the build) takes minutes on a busy 2-core machine; cached it is instant
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(1800)]
METRICS_PORT = 9090  # the image's default, set by no configuration here
PASSWORD = re.compile(r"user 'admin' password: (\S+)")
# buildah puts /run/.containerenv into the root filesystem for each run and removes it afterwards
BUILDAH_MOUNT_POINT_PARENTS = {"/run"}


@dataclass
class Container:
    """A buildah working container of the image: what `docker create` would give."""

    buildah: list[str]
    name: str
    config: dict  # the image's Docker config: Entrypoint, User, Env, Healthcheck, Volumes
    rootfs: Path

    def command(self, volumes: Path, *command: str, **env: str) -> list[str]:
        """`docker run --network host --user <image's USER> -v <host>/<name>:/app/<name> ...` as buildah run."""
        mounts = [arg for name in VOLUMES for arg in ("--volume", f"{volumes / name}:/app/{name}")]
        environment = [arg for key, value in env.items() for arg in ("--env", f"{key}={value}")]
        user = ["--user", self.config["User"]]
        return [*self.buildah, "run", "--isolation", "chroot", "--network", "host", *user, *mounts, *environment]


@pytest.fixture(scope="module")
def container() -> Iterator[Container]:
    # the script decides what to rebuild (content hashes), so no Makefile stamp repeats that logic, and the
    # test alone (`pytest tests/deploy/test_image.py`) builds what it needs
    built = subprocess.run(["bash", str(REPO / "tools" / "container-image.sh")], capture_output=True, text=True)
    if built.returncode:
        pytest.fail(f"tools/container-image.sh failed:\n{built.stderr}")
    found = dict(line.split("=", 1) for line in built.stdout.splitlines() if "=" in line)
    buildah = ["buildah", "--root", found["root"], "--runroot", found["runroot"], "--storage-driver", "vfs"]
    name = f"iot-connector-test-{os.getpid()}"
    subprocess.run([*buildah, "rm", name], capture_output=True)  # a leftover of a killed run
    subprocess.run([*buildah, "from", "--pull=never", "--name", name, found["image"]], check=True, capture_output=True)
    try:
        inspected = subprocess.run([*buildah, "inspect", "--type", "image", found["image"]], capture_output=True)
        config = json.loads(inspected.stdout)["Docker"]["config"]
        # `docker run -v` replaces the anonymous volume of an image's VOLUME; `buildah run` would keep its own
        # there and drop our -v, so this working container forgets the declarations (the image keeps them)
        assert set(config["Volumes"]) == {f"/app/{v}" for v in VOLUMES}
        forget = [arg for v in config["Volumes"] for arg in ("--volume", f"{v}-")]
        subprocess.run([*buildah, "config", *forget, name], check=True)
        rootfs = subprocess.run([*buildah, "mount", name], capture_output=True, text=True, check=True).stdout
        yield Container(buildah, name, config, Path(rootfs.strip()))
    finally:
        subprocess.run([*buildah, "rm", name], capture_output=True)


@pytest.fixture
def volumes() -> Iterator[Path]:
    """Four host directories owned by 1000:1000, as docs/operations.md tells operators to prepare them."""
    root = Path(tempfile.mkdtemp(prefix="iot-image-volumes-"))
    root.chmod(0o755)
    for name in VOLUMES:
        (root / name).mkdir(mode=0o750)
        os.chown(root / name, CONTAINER_UID, CONTAINER_UID)
    yield root
    subprocess.run(["rm", "-rf", str(root)], check=False)


def _listing(rootfs: Path) -> dict[str, tuple[int, int, int, int, int]]:
    """Every entry of the container's root filesystem with mode, owner, size and mtime: a write changes one."""
    entries = {}
    for folder, dirs, files in os.walk(rootfs):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            entries[path[len(str(rootfs)) :]] = (st.st_mode, st.st_uid, st.st_gid, st.st_size, st.st_mtime_ns)
    return entries


def _written(before: dict, after: dict) -> list[str]:
    changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    buildahs_own = {p for p in changed if p in BUILDAH_MOUNT_POINT_PARENTS and before[p][:4] == after.get(p, ())[:4]}
    return [path for path in changed if path not in buildahs_own]


def _processes() -> dict[int, tuple[int, str]]:
    """pid -> (parent pid, program) of every process."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat, program = (entry / "stat").read_text(), (entry / "cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            table[int(entry.name)] = (int(stat[stat.rindex(")") + 2 :].split()[1]), program.decode(errors="replace"))
    return table


class Running:
    """One `docker run -d` of the image: its output in a file, stopped like `docker stop`."""

    def __init__(self, container: Container, volumes: Path, log: Path, gui_port: int):
        with socket.socket() as probe:
            taken = probe.connect_ex(("127.0.0.1", METRICS_PORT)) == 0
        if taken:
            pytest.fail(f"port {METRICS_PORT} (the image's metrics default) is taken by another process: stop it")
        self.container, self.gui = container, f"http://127.0.0.1:{gui_port}"
        self.log, self.env = log, {"IOT_CONNECTOR_GUI_PORT": str(gui_port)}
        command = [*container.command(volumes, **self.env), container.name, "--", *container.config["Entrypoint"]]
        with log.open("w") as out:
            self.process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)

    def output(self) -> str:
        return self.log.read_text()

    def wait_healthy(self) -> requests.Response:
        deadline = time.monotonic() + 120  # the first import of pyarrow & co. on a busy machine
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the container exited: {self.output()}"
            try:
                answer = requests.get(f"{self.gui}/healthz", timeout=5)
                if answer.status_code == 200:
                    return answer
            except requests.ConnectionError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"/healthz never answered 200: {self.output()}")

    def healthcheck(self, volumes: Path) -> subprocess.CompletedProcess:
        """The image's HEALTHCHECK command, in the container, as Docker runs it every 30 s."""
        kind, *command = self.container.config["Healthcheck"]["Test"]
        assert kind == "CMD"
        run = [*self.container.command(volumes, **self.env), self.container.name, "--", *command]
        return subprocess.run(run, capture_output=True, text=True, timeout=60)

    def stop(self) -> int:
        """SIGTERM to the container's main process (the entrypoint exec'd the agent), then its exit code."""
        if self.process.poll() is not None:
            return self.process.returncode
        table = _processes()
        tree = self._tree(table)
        executors = [p for p in tree if table[p][1].endswith("buildah-chroot-exec")]
        main = [p for p, (parent, _) in table.items() if parent in executors]
        if len(main) != 1:
            self._kill(tree)
            raise AssertionError(f"no single main process under buildah-chroot-exec: {main}\n{self.output()}")
        os.kill(main[0], signal.SIGTERM)
        try:
            return self.process.wait(60)
        except subprocess.TimeoutExpired:
            self._kill(self._tree(_processes()))
            raise AssertionError(f"the container outlived SIGTERM by 60 s:\n{self.output()}") from None

    @staticmethod
    def _kill(pids: set[int]) -> None:
        """Leave nothing running after a failure."""
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def _tree(self, table: dict[int, tuple[int, str]]) -> set[int]:
        tree, grew = {self.process.pid}, True
        while grew:
            grown = tree | {p for p, (parent, _) in table.items() if parent in tree}
            tree, grew = grown, grown != tree
        return tree


def _login(gui: str, password: str) -> tuple[requests.Session, str]:
    session = requests.Session()
    answer = session.post(f"{gui}/api/login", json={"username": "admin", "password": password}, timeout=10)
    assert answer.status_code == 200, answer.text
    return session, answer.json()["csrf"]


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _connected(session: requests.Session, gui: str) -> bool:
    sources = session.get(f"{gui}/api/status", timeout=10).json()["sources"]
    return bool(sources.get("line1", {}).get("connected"))


def _publish(port: int, numbers: range) -> None:
    publisher = Publisher(port)
    try:
        for i in numbers:
            publisher.publish(f"plant/m{i % 4}/temp", json.dumps({"v": i}))
    finally:
        publisher.close()


def _rows(volumes: Path) -> list[dict]:
    table = volumes / "config" / "data" / "iot_records"
    if not (table / "_delta_log").exists():
        return []
    return DeltaTable(str(table)).to_pyarrow_table(columns=["record_id", "value_double"]).to_pylist()


def test_the_image_runs_as_uid_1000_and_keeps_everything_in_its_volumes(
    container: Container, volumes: Path, tmp_path: Path
) -> None:
    assert container.config["User"] == "1000:1000"
    broker = Mosquitto(tmp_path).start()
    before, gui_port = _listing(container.rootfs), free_port()
    try:
        first = Running(container, volumes, tmp_path / "first.log", gui_port)
        try:
            assert first.wait_healthy().json()["agent"] == "running"
            assert "<html" in requests.get(first.gui + "/", timeout=10).text.lower()
            metrics = requests.get(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10)
            assert metrics.status_code == 200
            assert "iot_queue_depth" in metrics.text
            check = first.healthcheck(volumes)
            assert check.returncode == 0, check.stdout + check.stderr
            assert f"healthy: http://127.0.0.1:{gui_port}/healthz: 200" in check.stdout
            # the operator reads the first-run password on the container log, logs in, adds an MQTT source
            password = PASSWORD.search(first.output()).group(1)
            session, csrf = _login(first.gui, password)
            source = {
                "name": "line1",
                "type": "mqtt",
                "url": broker.url,
                "topics": [{"topic": "plant/+/temp", "value_path": "v"}],
            }
            added = session.post(
                f"{first.gui}/api/sources", json={"source": source}, headers={"X-CSRF-Token": csrf}, timeout=30
            )
            assert added.status_code == 200, added.text
            _wait(lambda: _connected(session, first.gui), 60, "the MQTT source to connect")
            _publish(broker.port, range(50))
            _wait(lambda: len(_rows(volumes)) >= 50, 60, "50 records in the Delta table of the config volume")
        finally:
            stopped = first.stop()
        assert stopped == 0, first.output()
        assert "stopping: sources first, then the pipeline" in first.output()
        spool = volumes / "spool" / "wal"
        assert any(spool.iterdir()), "the spool is in its volume"
        spooled = {path.name for path in spool.iterdir()}

        second = Running(container, volumes, tmp_path / "second.log", gui_port)
        try:
            second.wait_healthy()
            assert not PASSWORD.search(second.output())  # the users were kept: no new first-run password
            session, csrf = _login(second.gui, password)
            config = session.get(f"{second.gui}/api/config", timeout=10).json()["config"]
            assert [s["url"] for s in config["sources"]] == [broker.url]
            assert spooled <= {path.name for path in spool.iterdir()}
            _wait(lambda: _connected(session, second.gui), 60, "the MQTT source to reconnect")
            _publish(broker.port, range(50, 100))
            _wait(lambda: len(_rows(volumes)) >= 100, 60, "100 records in the Delta table")
        finally:
            stopped = second.stop()
        assert stopped == 0, second.output()
    finally:
        broker.stop()
    rows = _rows(volumes)
    assert len({row["record_id"] for row in rows}) == len(rows) == 100  # nothing delivered twice
    assert sorted(row["value_double"] for row in rows) == [float(i) for i in range(100)]
    assert "agent.log" in os.listdir(volumes / "logs")
    owners = {path.stat().st_uid for name in VOLUMES for path in (volumes / name).rglob("*")}
    assert owners == {CONTAINER_UID}
    assert _written(before, _listing(container.rootfs)) == []
