"""Two writers at once, made to collide on purpose: a Sink whose calls wait for cues, and threads that run.

`Choreographed` wraps a real sink (under the runner's ConflictRetry, so a retry is not cued again): before
(and after) the FIRST call of an operation on a table it runs the cue given for it — a barrier both writers
wait at, so their commits start together and race, or an event that orders them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from osipi_connector.lake.schemas import TableSpec

Cue = Callable[[], Any]
WAIT = 240  # seconds: a cue never met fails the test (before pytest-timeout's 300 s) instead of hanging it


def barrier(parties: int = 2) -> Cue:
    """Cue: wait until `parties` writers are here, then all go at once."""
    gate = threading.Barrier(parties, timeout=WAIT)
    return gate.wait


class Choreographed:
    """A Sink that runs `before[(operation, table)]` / `after[...]` around the first such call."""

    def __init__(
        self,
        sink: Any,
        before: dict[tuple[str, str], Cue] | None = None,
        after: dict[tuple[str, str], Cue] | None = None,
    ) -> None:
        self.sink = sink
        self.engine = sink.engine
        self.before, self.after = dict(before or {}), dict(after or {})
        self.cued: list[tuple[str, str]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sink, name)

    def _call(self, operation: str, spec: TableSpec, call: Callable[[], Any]) -> Any:
        key = (operation, spec.name)
        if key in self.before:
            self.before.pop(key)()
            self.cued.append(key)
        result = call()
        if key in self.after:
            self.after.pop(key)()
        return result

    def table_name(self, spec: TableSpec) -> str:
        return self.sink.table_name(spec)

    def ensure(self, spec):
        return self._call("ensure", spec, lambda: self.sink.ensure(spec))

    def merge(self, spec, data, **hints):
        return self._call("merge", spec, lambda: self.sink.merge(spec, data, **hints))

    def merge_dataframe(self, spec, df, partition_values=None, **hints):
        return self._call("merge", spec, lambda: self.sink.merge_dataframe(spec, df, partition_values, **hints))

    def append(self, spec, data):
        return self._call("append", spec, lambda: self.sink.append(spec, data))

    def read(self, spec, columns=None):
        return self._call("read", spec, lambda: self.sink.read(spec, columns))

    def optimize(self, spec):
        return self._call("optimize", spec, lambda: self.sink.optimize(spec))

    def vacuum(self, spec, retain_hours=168):
        return self._call("vacuum", spec, lambda: self.sink.vacuum(spec, retain_hours=retain_hours))


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls on one thread each and return their results in order (an exception is re-raised)."""
    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(call) for call in calls]
        return [f.result(timeout=WAIT * 2) for f in futures]
