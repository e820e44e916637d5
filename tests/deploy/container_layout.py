"""The container's file layout rebuilt outside Docker, with the same user rules (the image itself is built and
run in test_image.py; this is the fast check of the entrypoint's behaviour).

`/opt/venv` becomes a venv on Debian's `/usr/bin/python3.11` (any user may run it, unlike a pyenv under
/root) holding the wheel's `[edge]` dependencies hard-linked from the project's venv (copied when hard links
are impossible), `/opt/iot-connector` the wheel built from the Docker build context (`.dockerignore`
applied) plus the deploy scripts, made read-only (`chmod -R a-w`), `/app/{config,certs,spool,logs}` four
directories owned by UID 1000, and the entrypoint runs as UID/GID 1000 via `setpriv` when the tests run as
root (otherwise as the current user, with the same read-only code).
"""

from __future__ import annotations

import atexit
import functools
import importlib.metadata as metadata
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
VOLUMES = ("config", "certs", "spool", "logs")
CONTAINER_UID = 1000

PYTHON_VERSION = f"{sys.version_info[0]}.{sys.version_info[1]}"
# Debian's interpreter of the running version: any user may run it, and its C-extension ABI is the venv's
SYSTEM_PYTHON = Path(f"/usr/bin/python{PYTHON_VERSION}")
INSTALL_HINT = (
    f"install Debian's python{PYTHON_VERSION} and python{PYTHON_VERSION}-venv with `bash tools/system-deps.sh` "
    "(make test runs it)"
)
DEPENDENCIES = "import deltalake, prometheus_client, pydantic, orjson, yaml"


def _dockerignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule for the patterns we use: a path is out when it or a parent matches; `**/x` at any depth."""
    parts = Path(relative).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in patterns:
        if pattern.startswith("**/"):
            if any(fnmatch(part, pattern[3:]) for part in parts):
                return True
        elif any(fnmatch(candidate, pattern) for candidate in candidates):
            return True
    return False


@functools.cache
def docker_context() -> Path:
    """The files `docker build .` receives: the repository's files minus what .dockerignore excludes."""
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO, capture_output=True, text=True
    ).stdout.splitlines()
    context = Path(tempfile.mkdtemp(prefix="iot-docker-context-"))
    atexit.register(shutil.rmtree, context, True)
    for relative in listed:
        source = REPO / relative
        if source.is_file() and not _dockerignored(relative, patterns):
            (context / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / relative)
    return context


@functools.cache
def wheel() -> Path:
    """The build stage's `pip wheel --no-deps .` on the Docker context (no network: no build isolation)."""
    context = docker_context()
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", "dist", "."],
        cwd=context,
        check=True,
        capture_output=True,
    )
    (built,) = (context / "dist").glob("*.whl")
    return built


@functools.cache
def installed_wheel() -> Path:
    """The wheel installed like the image's venv, once per session (dependencies: the project's venv)."""
    target = docker_context() / "installed"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-index",
            "--target",
            str(target),
            str(wheel()),
        ],
        check=True,
        capture_output=True,
    )
    return target


def _needed(requires: list[str] | None, extras: frozenset[str]) -> list[Requirement]:
    environments = [{"extra": extra} for extra in extras | {""}]
    return [
        requirement
        for requirement in map(Requirement, requires or [])
        if requirement.marker is None or any(requirement.marker.evaluate(env) for env in environments)
    ]


def edge_distributions() -> list[metadata.Distribution]:
    """The wheel's dependencies with `[edge]`, transitively, as installed in the project's venv: what the
    image's `pip install --constraint requirements.txt "<wheel>[edge]"` installs."""
    (info,) = installed_wheel().glob("*.dist-info")
    todo = _needed(metadata.PathDistribution(info).requires, frozenset({"edge"}))
    found: dict[str, metadata.Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement = todo.pop()
        key = (canonicalize_name(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        try:
            found[key[0]] = metadata.distribution(requirement.name)
        except metadata.PackageNotFoundError:
            pytest.fail(
                f"{requirement} (an [edge] dependency of the wheel) is missing in {sys.prefix}: make setup-test"
            )
        todo += _needed(found[key[0]].requires, key[1])
    return list(found.values())


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or hard links refused: a copy (slower, same result)
        shutil.copy2(source, target)


@functools.cache
def container_venv() -> Path:
    """The image's `/opt/venv` without the wheel: a venv on Debian's python holding exactly the `[edge]`
    dependencies. Hard links make its ~500 MB cost a second; nothing writes through them (root owns the
    files, UID 1000 only reads)."""
    if not SYSTEM_PYTHON.exists():
        pytest.fail(f"{SYSTEM_PYTHON} is missing: {INSTALL_HINT}")
    root = Path(tempfile.mkdtemp(prefix="iot-container-venv-"))
    root.chmod(0o755)  # mkdtemp's 0700 would keep UID 1000 out
    atexit.register(shutil.rmtree, root, True)
    venv = root / "venv"
    made = subprocess.run(
        [str(SYSTEM_PYTHON), "-m", "venv", "--without-pip", str(venv)], capture_output=True, text=True
    )
    if made.returncode:
        pytest.fail(f"{SYSTEM_PYTHON} -m venv failed ({made.stderr.strip()}): {INSTALL_HINT}")
    site_packages = venv / "lib" / f"python{PYTHON_VERSION}" / "site-packages"
    for dist in edge_distributions():
        if dist.files is None:
            pytest.fail(f"{dist.metadata['Name']} has no RECORD in {sys.prefix}: reinstall it with pip")
        for file in dist.files:
            source = Path(dist.locate_file(file))
            if file.parts[0] == ".." or not source.is_file():  # console scripts outside site-packages
                continue
            target = site_packages / file
            target.parent.mkdir(parents=True, exist_ok=True)
            _link_or_copy(source, target)
    return venv


@dataclass
class Layout:
    root: Path
    code: Path = field(init=False)
    bin: Path = field(init=False)
    app: Path = field(init=False)
    venv: Path = field(init=False)
    as_uid: int | None = field(init=False)

    def __post_init__(self) -> None:
        self.code, self.bin, self.app = self.root / "opt" / "code", self.root / "opt" / "bin", self.root / "app"
        self.venv, self.as_uid = container_venv(), None
        if os.geteuid() == 0:
            if not shutil.which("setpriv"):
                pytest.fail("setpriv (Debian's util-linux) is missing: apt-get install util-linux")
            self.as_uid = CONTAINER_UID
        problem = self._unusable_by_container_user()
        if problem:
            pytest.fail(f"UID {self.as_uid} cannot run {self.venv}/bin/python with the [edge] dependencies: {problem}")

    def _unusable_by_container_user(self) -> str:
        # through bash, like the entrypoint: bash refuses a path it cannot stat (execve alone may differ)
        python = str(self.venv / "bin" / "python")
        command = self._as_container_user(["/bin/bash", "-c", 'exec "$0" -c "$1"', python, DEPENDENCIES])
        result = subprocess.run(command, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, cwd="/")
        return result.stderr.strip()[-2000:] if result.returncode else ""

    def _as_container_user(self, command: list[str]) -> list[str]:
        if self.as_uid is None:
            return command
        uid = str(self.as_uid)
        return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--", *command]

    def build(self) -> Layout:
        shutil.copytree(installed_wheel(), self.code, symlinks=True)
        # the test-only counter source (a plugin) lives with the code, read-only too
        (self.code / "deploy_plugins").mkdir()
        shutil.copy(REPO / "tests" / "edge" / "counter_source.py", self.code / "deploy_plugins" / "counter_source.py")
        self.bin.mkdir(parents=True)
        for name in ("entrypoint.sh", "logtee.py", "healthcheck.py"):
            shutil.copy2(docker_context() / "deploy" / name, self.bin / name)
        # pip's console script; only its interpreter line changes: the venv's python, found on PATH
        script = (self.code / "bin" / "iot-connector").read_text().split("\n", 1)[1]
        (self.bin / "iot-connector").write_text("#!/usr/bin/env python\n" + script)
        (self.bin / "iot-connector").chmod(0o755)
        subprocess.run(["chmod", "-R", "a-w", str(self.root / "opt")], check=True)
        for volume in VOLUMES:
            (self.app / volume).mkdir(parents=True)
            if self.as_uid is not None:
                os.chown(self.app / volume, self.as_uid, self.as_uid)
        # the parents stay root-owned and not writable by others, like the image's /app
        for path in (self.root, self.root / "opt", self.app):
            path.chmod(0o755)
        return self

    def env(self, **extra: str) -> dict[str, str]:
        """A container-like environment: no inherited HOME/TMPDIR, the venv's python on PATH (the image's
        `ENV PATH=/opt/venv/bin:$PATH`)."""
        env = {
            "PATH": f"{self.bin}:{self.venv}/bin:/usr/bin:/bin",
            "PYTHONPATH": str(self.code),
            "IOT_CONNECTOR_APP_DIR": str(self.app),
            "LANG": "C.UTF-8",
        }
        return {**env, **extra}

    def command(self, *args: str) -> list[str]:
        return self._as_container_user([str(self.bin / "entrypoint.sh"), *args])

    def remove(self) -> None:
        for path in (self.root / "opt",):
            subprocess.run(["chmod", "-R", "u+w", str(path)], check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def new_layout() -> Layout:
    # not pytest's tmp_path: its parents are mode 0700, which UID 1000 could not traverse
    root = Path(tempfile.mkdtemp(prefix="iot-container-"))
    root.chmod(0o755)
    return Layout(root).build()


def snapshot(path: Path) -> dict[Path, tuple[int, float]]:
    """Every entry under path with its size and mtime: a later difference is a write."""
    return {p: (st.st_size, st.st_mtime) for p in path.rglob("*") if not stat.S_ISDIR((st := p.lstat()).st_mode)}
