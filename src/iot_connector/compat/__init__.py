"""Every private hook into a third-party library, one module per library (`asyncua.py`, `paho.py`).

Why: a private name may change in any release, and a hook that silently stops being called loses data
(asyncua would hand out per-item events the source ignores). Each module says which versions were checked
and why the hook exists; `require` checks a hook before it is used, so an untested release fails at once
naming the library, its version and the hook. tests/edge/sources/test_compat.py runs the same checks, and
the hooks' behaviour, on the installed versions.
"""

from __future__ import annotations

import functools
import inspect
from importlib.metadata import version


class LibraryChanged(RuntimeError):
    """An installed library no longer has a private hook the connector relies on."""


def missing(distribution: str, hook: str, checked: str, why: str) -> LibraryChanged:
    return LibraryChanged(
        f"{distribution} {version(distribution)} no longer has {hook}, which the connector relies on ({why}); "
        f"it was checked with {distribution} {checked}: install that version (pip install '{distribution}=={checked}')"
    )


@functools.cache
def require(distribution: str, owner: type, name: str, params: tuple[str, ...], checked: str, why: str) -> None:
    """`owner.name` exists and takes exactly `params` (after self); else LibraryChanged. Checked once per hook."""
    hook = f"{owner.__module__}.{owner.__qualname__}.{name}"
    function = inspect.getattr_static(owner, name, None)
    if not callable(function):
        raise missing(distribution, hook, checked, why)
    found = tuple(inspect.signature(function).parameters)[1:]
    if found != params:
        raise missing(distribution, f"{hook}({', '.join(params)}) (it now takes ({', '.join(found)}))", checked, why)
