"""The container's file layout rebuilt outside Docker (no engine here), with the same user rules.

`/opt/venv` + `/opt/iot-connector` become the wheel built from the Docker build context (`.dockerignore`
applied) installed into a temp prefix and made read-only (`chmod -R a-w`), `/app/{config,certs,
spool,logs}` four directories owned by UID 1000, and the entrypoint runs as UID/GID 1000 via `setpriv` when
the tests run as root (otherwise as the current user, with the same read-only code). The dependencies come
from the project's venv (`site-packages` on PYTHONPATH, read-only for UID 1000 as well); its interpreter may
sit where UID 1000 cannot reach (a pyenv under /root), so then the system's python of the same version runs.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import site
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
VOLUMES = ("config", "certs", "spool", "logs")
CONTAINER_UID = 1000


SITE_PACKAGES = site.getsitepackages()[0]
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


@dataclass
class Layout:
    root: Path
    code: Path = field(init=False)
    bin: Path = field(init=False)
    app: Path = field(init=False)
    as_uid: int | None = field(init=False)
    python: str | None = field(init=False)

    def __post_init__(self) -> None:
        self.code, self.bin, self.app = self.root / "opt" / "code", self.root / "opt" / "bin", self.root / "app"
        self.as_uid, self.python = None, sys.executable
        if os.geteuid() == 0 and shutil.which("setpriv"):
            self.as_uid = CONTAINER_UID
            self.python = next(filter(self._usable_by_container_user, (sys.executable, _system_python())), None)
            if self.python is None:
                pytest.skip(f"no python {sys.version_info[0]}.{sys.version_info[1]} that UID 1000 may run")

    def _usable_by_container_user(self, python: str | None) -> bool:
        if python is None:
            return False
        # through bash, like the entrypoint: bash refuses a path it cannot stat (execve alone may differ)
        command = self._as_container_user(["/bin/bash", "-c", 'exec "$0" -c "$1"', python, DEPENDENCIES])
        env = {"PYTHONPATH": SITE_PACKAGES, "PATH": "/usr/bin:/bin"}
        return subprocess.run(command, env=env, capture_output=True, cwd="/", check=False).returncode == 0

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
        # pip's console script; only its interpreter line changes (the venv's python may be out of reach)
        script = (self.code / "bin" / "iot-connector").read_text().split("\n", 1)[1]
        (self.bin / "iot-connector").write_text("#!/usr/bin/env python\n" + script)
        (self.bin / "iot-connector").chmod(0o755)
        (self.bin / "python").symlink_to(self.python)
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
        """A container-like environment: no inherited HOME/TMPDIR, the venv's python on PATH."""
        env = {
            "PATH": f"{self.bin}:/usr/bin:/bin",
            "PYTHONPATH": f"{self.code}:{SITE_PACKAGES}",
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


def _system_python() -> str | None:
    """The distribution's python of the running version (its C extensions ABI matches the venv's)."""
    return shutil.which(f"python{sys.version_info[0]}.{sys.version_info[1]}", path="/usr/bin:/usr/local/bin")


def new_layout() -> Layout:
    # not pytest's tmp_path: its parents are mode 0700, which UID 1000 could not traverse
    root = Path(tempfile.mkdtemp(prefix="iot-container-"))
    root.chmod(0o755)
    return Layout(root).build()


def snapshot(path: Path) -> dict[Path, tuple[int, float]]:
    """Every entry under path with its size and mtime: a later difference is a write."""
    return {p: (st.st_size, st.st_mtime) for p in path.rglob("*") if not stat.S_ISDIR((st := p.lstat()).st_mode)}
