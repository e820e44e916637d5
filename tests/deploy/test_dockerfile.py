"""The Dockerfile read as text: base, user, ports, volumes, healthcheck, entrypoint, pinned edge dependencies,
and nothing secret in the image or its build context (test_image.py builds and runs it)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from iot_connector.cli import build_parser
from tests.deploy.container_layout import docker_context

REPO = Path(__file__).resolve().parents[2]
SECRET_WORDS = re.compile(r"PASSWORD|SECRET|TOKEN|FERNET|CLIENT_ID|_KEY\b", re.IGNORECASE)


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (REPO / "Dockerfile").read_text())
    result = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            result.append((word.upper(), rest.strip()))
    return result


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


@pytest.fixture(scope="module")
def runtime() -> dict[str, list[str]]:
    """The final stage's instructions by name."""
    by_name: dict[str, list[str]] = {}
    for word, rest in _stages()[-1]:
        by_name.setdefault(word, []).append(rest)
    return by_name


def test_multi_stage_on_slim_python_3_11() -> None:
    args = dict(rest.split("=", 1) for word, rest in _instructions() if word == "ARG" and "=" in rest)
    assert args["PYTHON_IMAGE"].startswith("python:3.11-slim")
    froms = [rest for word, rest in _instructions() if word == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]


def test_the_wheel_is_installed_with_edge_at_the_pinned_versions() -> None:
    build = " ".join(rest for word, rest in _stages()[0] if word == "RUN")
    assert "pip wheel --no-deps" in build
    assert '--constraint requirements.txt "$(ls /dist/*.whl)[edge]"' in build


def test_every_edge_dependency_is_pinned_in_requirements() -> None:
    setup = (REPO / "setup.py").read_text()
    edge = re.search(r'"edge": \[(.*?)\]', setup, re.DOTALL).group(1)
    names = {re.split(r"[<>=!\[]", item)[0].lower() for item in re.findall(r'"([^"]+)"', edge)}
    pins = {
        line.split("==")[0].strip().lower()
        for line in (REPO / "requirements.txt").read_text().splitlines()
        if "==" in line and not line.lstrip().startswith("#")
    }
    assert names - pins == set()


def test_runs_as_uid_1000_with_the_four_volumes_and_both_ports(runtime) -> None:
    assert runtime["USER"] == ["1000:1000"]
    assert runtime["EXPOSE"] == ["8080 9090"]
    (volume,) = runtime["VOLUME"]
    assert set(re.findall(r'"([^"]+)"', volume)) == {"/app/config", "/app/certs", "/app/spool", "/app/logs"}
    env = " ".join(runtime["ENV"])
    assert "HOME=/app/spool/home" in env
    assert "TMPDIR=/app/spool/tmp" in env  # read-only root: temp files go to a volume


def test_healthcheck_and_entrypoint_are_files_the_image_copies(runtime) -> None:
    copies = " ".join(runtime["COPY"])
    (healthcheck,) = runtime["HEALTHCHECK"]
    assert 'CMD ["python", "/opt/iot-connector/healthcheck.py"]' in healthcheck
    assert "--interval=" in healthcheck
    (entrypoint,) = runtime["ENTRYPOINT"]
    assert entrypoint == '["/opt/iot-connector/entrypoint.sh"]'
    for name in ("entrypoint.sh", "healthcheck.py", "logtee.py"):
        assert f"deploy/{name}" in copies
        assert (REPO / "deploy" / name).is_file()
    assert (REPO / "deploy" / "entrypoint.sh").stat().st_mode & 0o111


def test_the_entrypoint_command_is_a_console_script_of_the_wheel() -> None:
    script = (REPO / "deploy" / "entrypoint.sh").read_text()
    assert 'exec iot-connector "$MODE" --config-dir "$CONFIG_DIR" "$@"' in script
    assert '"iot-connector=iot_connector.cli:main"' in (REPO / "setup.py").read_text()
    for mode in ("serve", "run"):
        assert build_parser().parse_args([mode, "--config-dir", "/app/config"]).command == mode


def test_the_entrypoint_is_valid_bash() -> None:
    result = subprocess.run(["bash", "-n", str(REPO / "deploy" / "entrypoint.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_no_secret_is_baked_into_the_image() -> None:
    for word, rest in _instructions():
        if word in ("ENV", "ARG", "LABEL"):
            for token in shlex.split(rest):
                name, _, value = token.partition("=")
                assert not (SECRET_WORDS.search(name) and value), f"{word} {name} carries a value"
        if word == "COPY":
            assert not re.search(r"\bconfig\b|secret|\.pem|\.key|\.env", rest), f"COPY {rest}"


def test_the_build_context_excludes_secrets_and_local_state() -> None:
    ignored = set((REPO / ".dockerignore").read_text().split())
    for pattern in (".git", ".venv", "config", "**/secret.key*", "**/connector_state.json", "**/*.pem", "**/.env"):
        assert pattern in ignored, pattern
    # but everything the build COPYs is in the context
    for needed in ("src", "setup.py", "pyproject.toml", "requirements.txt", "README.md", "deploy"):
        assert needed not in ignored, needed


def test_every_copy_source_is_in_the_build_context() -> None:
    context = docker_context()
    for word, rest in _instructions():
        if word == "COPY" and not rest.startswith("--from"):
            for source in rest.split()[:-1]:
                assert (context / source).exists(), f"COPY {source}: excluded by .dockerignore or missing"
    assert not (context / ".venv").exists()
    assert not list(context.rglob("secret.key*"))


def test_the_healthcheck_script_runs_on_the_image_python_version() -> None:
    """No agent answers on these ports: the script says unhealthy and exits 1 (its happy path is in
    test_entrypoint.py and test_image.py against a running entrypoint)."""
    env = {"IOT_CONNECTOR_GUI_PORT": "9", "IOT_CONNECTOR_METRICS_PORT": "9", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, str(REPO / "deploy" / "healthcheck.py")], env=env, capture_output=True, text=True
    )
    assert result.returncode == 1
    assert result.stdout.startswith("unhealthy: the GUI on port 9 does not answer")
