"""Timeseries commits written on a thread of their own while the next commit's units are fetched.

An hourly run alternated between two halves: the main thread wrote a commit (seconds; much of it inside
delta-rs, without the GIL) while the fetch threads stopped once `workers + 2` units waited for it, then the
units were fetched while nothing was written — at 30,000 tags the main thread waited 32 s for fetches and the
fetches waited about as long for the commits. Here a commit is handed to one writer thread and the main
thread goes on buffering the next one. At most one commit is being written while the next is buffered, so a
run holds at most two commits' rows (`performance.commit_rows` each), and commits run one at a time in order —
each commit's rows, then its watermarks — so runner.py's correctness argument (data before watermarks) holds.
A commit that fails raises in the main thread at the next hand-over or at the end, and nothing after it is
written."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any


class Committer:
    """One writer thread; `submit` waits for the previous commit (raising its error) before handing over."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="pi-commit")
        self._pending: Future | None = None

    def submit(self, commit: Callable[..., Any], *args: Any) -> None:
        self.wait()
        self._pending = self._pool.submit(commit, *args)

    def wait(self) -> None:
        """Until the commit handed over last is written; its exception, if any, is raised here."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> Committer:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        try:
            if kind is None:
                self.wait()
        finally:  # on an error elsewhere: the commit in progress still ends before the run goes on
            self._pool.shutdown(wait=True)
