"""deploy/logtee.py: the container log copied to /app/logs with size rotation and passwords masked."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LOGTEE = REPO / "deploy" / "logtee.py"


def _tee(log: Path, text: str, *limits: str) -> str:
    result = subprocess.run(
        [sys.executable, str(LOGTEE), str(log), *limits], input=text, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_stdout_gets_every_line_and_the_file_rotates_keeping_the_newest(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "agent.log"
    lines = [f'{{"msg": "line {i:04d}"}}\n' for i in range(800)]
    out = _tee(log, "".join(lines), "2000", "3")
    assert out == "".join(lines)  # the container log is untouched
    files = sorted(p.name for p in log.parent.iterdir())
    assert files == ["agent.log", "agent.log.1", "agent.log.2", "agent.log.3"]
    assert all(p.stat().st_size <= 2000 for p in log.parent.iterdir())
    kept = "".join((log.parent / name).read_text() for name in reversed(files[1:])) + log.read_text()
    assert kept.endswith(lines[-1])
    assert 300 < len(kept.splitlines()) < 800  # the oldest were rotated away ...
    assert kept == "".join(lines[-len(kept.splitlines()) :])  # ... the newest kept, in order, none torn


def test_passwords_are_masked_in_the_file_only(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    text = (
        "iot-connector GUI: first run, user 'admin' password: s3cr3t-Pw  (change it)\n"
        '{"password": "x1"}\n'
        "{\"msg\": \"Sending: UserNameIdentityToken(UserName='op', Password=b'asyncua-pw', Enc=None)\"}\n"
        '{"msg": "config {\\"password\\": \\"escaped-pw\\"}"}\n'
    )
    assert _tee(log, text) == text
    saved = log.read_text()
    for secret in ("s3cr3t-Pw", "x1", "asyncua-pw", "escaped-pw"):
        assert secret not in saved
    assert "Password=b'***'" in saved
    assert "user 'admin' password: ***  (change it)" in saved


def test_appends_to_an_existing_log_across_restarts(tmp_path: Path) -> None:
    log = tmp_path / "agent.log"
    _tee(log, "first start\n")
    _tee(log, "second start\n")
    assert log.read_text() == "first start\nsecond start\n"
