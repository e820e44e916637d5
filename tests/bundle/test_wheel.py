"""The artifact the bundle uploads: `python -m build --wheel` from setup.py, with both products and the simulator."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.bundle.bundle_files import ROOT


@pytest.mark.slow
def test_wheel_builds_with_both_packages_and_the_entry_points(tmp_path: Path) -> None:
    # Build from a copy: setuptools writes build/ and *.egg-info next to setup.py, and others build in parallel.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    result = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path), str(source)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("osipi_connector-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        entry_points = next(zf.read(n).decode() for n in names if n.endswith(".dist-info/entry_points.txt"))
    for module in (
        "osipi_connector/__init__.py",
        "osipi_connector/cli.py",
        "osipi_connector/simulator/server.py",
        "osipi_connector/lake/schemas.py",
        "iot_connector/__init__.py",
        "iot_connector/model.py",
        "iot_connector/ddl.py",
    ):
        assert module in names, f"{module} missing from {wheel.name}"
    assert not [n for n in names if n.startswith("tests/")], "tests must not ship in the wheel"
    assert "osipi-connector = osipi_connector.cli:main" in entry_points
