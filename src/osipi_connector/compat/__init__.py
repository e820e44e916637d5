"""Every private hook into a third-party library, one module per library (today `uvicorn.py`).

Why: a private name may change in any release; each module says which versions were checked and why the hook
exists, and fails naming the library, its version and the hook when it is gone (LibraryChanged).
tests/simulator/test_compat.py checks the hooks on the installed versions.
"""


class LibraryChanged(RuntimeError):
    """An installed library no longer has a private hook the connector relies on."""
