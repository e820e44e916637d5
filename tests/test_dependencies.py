"""setup.py's dependency ranges say what is tested: every requirement of the package (base and every extra) is
pinned in requirements.txt, the pin lies inside the range, and the range's floor is the pin's major.minor (no
older version runs in `make test`, so none may be promised). Read from the package metadata the build backend
produces, i.e. what pip sees."""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import build.util
import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]


def pins() -> dict[str, Version]:
    found: dict[str, Version] = {}
    for line in (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            req = Requirement(line)
            (spec,) = req.specifier
            assert spec.operator == "==", f"requirements.txt: {line} is not an exact pin"
            found[canonicalize_name(req.name)] = Version(spec.version)
    return found


@pytest.fixture(scope="module")
def metadata():
    return build.util.project_wheel_metadata(ROOT, isolated=False)


def requirements(metadata) -> list[Requirement]:
    return [Requirement(text) for text in metadata.get_all("Requires-Dist")]


def where(req: Requirement) -> str:
    extra = re.search(r"extra == .(\w+)", str(req.marker))
    return f"extra [{extra.group(1)}]" if extra else "install_requires"


def floor(req: Requirement) -> Version | None:
    lows = [Version(s.version.removesuffix(".*")) for s in req.specifier if s.operator in (">=", "==", "~=")]
    return max(lows) if lows else None


def test_every_requirement_is_pinned_inside_its_range(metadata):
    pinned = pins()
    reqs = requirements(metadata)
    assert {"edge", "kerberos", "spark", "databricks", "dev"} <= set(metadata.get_all("Provides-Extra"))
    assert len(reqs) > 30
    problems = []
    for req in reqs:
        pin = pinned.get(canonicalize_name(req.name))
        if pin is None:
            problems.append(f"{req} ({where(req)}) is not pinned in requirements.txt")
        elif pin not in req.specifier:
            problems.append(f"{req} ({where(req)}) excludes the tested pin {req.name}=={pin}")
    assert not problems, "\n".join(problems)


def test_every_floor_is_the_tested_minor(metadata):
    pinned = pins()
    problems = []
    for req in requirements(metadata):
        pin, low = pinned.get(canonicalize_name(req.name)), floor(req)
        if pin is None:
            continue  # reported by the test above
        if low is None:
            problems.append(f"{req} ({where(req)}) has no floor; make test runs {pin}")
        elif low.release[:2] != pin.release[:2]:
            problems.append(
                f"{req} ({where(req)}): the floor {low} is not the tested {pin.major}.{pin.minor} "
                f"(requirements.txt pins {pin}); set the floor to >={pin.major}.{pin.minor}"
            )
    assert not problems, "\n".join(problems)


def test_python_requires_promises_no_python_the_pins_cannot_install_on(metadata):
    """The lowest Python setup.py allows must satisfy every pin's own Requires-Python (numpy, pyarrow,
    jsonpath-ng and fastapi at the pinned versions need 3.11: 3.10 cannot install them)."""
    allowed = SpecifierSet(metadata["Requires-Python"])
    lowest = min(Version(s.version) for s in allowed if s.operator == ">=")
    problems = []
    for name, pin in pins().items():
        try:
            needs = importlib.metadata.metadata(name)["Requires-Python"]
        except importlib.metadata.PackageNotFoundError:
            continue  # not installed on this platform
        if needs and lowest not in SpecifierSet(needs):
            problems.append(f"{name}=={pin} needs Python {needs}, but setup.py allows {allowed}")
    assert not problems, "\n".join(problems)
