"""The local Delta sink keeps its table open between appends; appends by another writer in between, and a
table removed under it, do not lose or corrupt rows."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from deltalake import DeltaTable, write_deltalake

from iot_connector.sinks.base import SinkError
from iot_connector.sinks.delta import DeltaSink, records_table
from tests.edge.helpers import declined_table, make_records


def _seqs(path: Path) -> list[int]:
    return sorted(DeltaTable(str(path)).to_pyarrow_table(columns=["seq"]).column("seq").to_pylist())


async def test_appends_interleaved_with_another_writer_all_land(tmp_path: Path) -> None:
    path = tmp_path / "t"
    sink = DeltaSink(path, agent_id="a")
    await sink.open()
    for i in range(0, 300, 100):
        await sink.write([r.finalize() for r in make_records(100, i)])
        other = [r.finalize() for r in make_records(10, 1000 + i)]  # e.g. a second agent on the same table
        write_deltalake(str(path), records_table(other, "b"), mode="append")
    assert _seqs(path) == list(range(300)) + [s for i in range(0, 300, 100) for s in range(1000 + i, 1010 + i)]
    assert DeltaTable(str(path)).version() == 6
    await sink.close()


async def _sink_whose_table_was_removed(path: Path) -> DeltaSink:
    sink = DeltaSink(path, agent_id="a")
    await sink.open()
    await sink.write([r.finalize() for r in make_records(5)])
    shutil.rmtree(path)
    return sink


async def test_a_table_removed_under_the_sink_is_a_retriable_error_then_recreated(tmp_path: Path) -> None:
    path = tmp_path / "t"
    sink = await _sink_whose_table_was_removed(path)
    with pytest.raises(SinkError) as failed:
        await sink.write([r.finalize() for r in make_records(5, 5)])
    assert failed.value.retriable
    assert failed.value.error_type == "delta_write"
    await sink.open()  # what the pipeline does once the user restored the directory / on restart
    await sink.write([r.finalize() for r in make_records(5, 10)])
    assert _seqs(path) == list(range(10, 15))


async def test_batches_sent_during_a_commit_share_the_next_one_in_order(tmp_path: Path) -> None:
    """An idle sink commits the first batch alone, at once; the nine sent while it runs share the next."""
    path = tmp_path / "t"
    sink = DeltaSink(path, agent_id="a")
    await sink.open()
    first = await sink.send([r.finalize() for r in make_records(50)])
    await asyncio.sleep(0)  # its commit starts; the next nine batches arrive while it runs
    acks = [await sink.send([r.finalize() for r in make_records(50, i)]) for i in range(50, 500, 50)]
    await asyncio.gather(first, *acks)
    assert _seqs(path) == list(range(500))
    assert DeltaTable(str(path)).version() == 2  # 10 batches, 2 commits: the first alone, the rest together
    at_first = DeltaTable(str(path), version=1).to_pyarrow_table(columns=["seq"]).column("seq").to_pylist()
    assert sorted(at_first) == list(range(50))
    await sink.close()


async def test_a_failed_commit_fails_the_batches_queued_behind_it(tmp_path: Path) -> None:
    path = tmp_path / "t"
    sink = await _sink_whose_table_was_removed(path)
    acks = [await sink.send([r.finalize() for r in make_records(5, i)]) for i in range(5, 30, 5)]
    results = await asyncio.gather(*acks, return_exceptions=True)
    assert all(isinstance(r, SinkError) for r in results)
    assert not path.exists() or not DeltaTable.is_deltatable(str(path))
    await sink.close()


async def test_the_table_object_is_opened_afresh_every_reopen_every_appends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through delta-rs' writer. A delta-rs table object slows down with every commit it has seen since it was
    opened (benchmarked in docs/benchmarks.md): the sink re-opens it every REOPEN_EVERY appends, losing and
    reordering nothing."""
    monkeypatch.setattr("iot_connector.sinks.delta.REOPEN_EVERY", 5)
    path = tmp_path / "t"
    declined_table(path)
    sink = DeltaSink(path, agent_id="a")
    await sink.open()
    objects = []
    for i in range(23):
        await sink.write([r.finalize() for r in make_records(3, 3 * i)])
        objects.append(sink._table)
    await sink.close()
    assert _seqs(path) == list(range(69))
    assert DeltaTable(str(path)).version() == 24  # created, constraint added, 22 appends
    fresh = [i + 1 for i, o in enumerate(objects) if i == 0 or o is not objects[i - 1]]
    assert fresh == [1, 6, 11, 16, 21]  # the appends made on a table object opened afresh


async def test_the_rest_after_a_commit_is_its_cpu_not_its_wait_for_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A commit that mostly waits (fsync on a slow disk) costs no CPU: the next one is not held back as long
    as it waited, only by the window."""
    from iot_connector.sinks.delta_append import BlindAppender

    spans: list[tuple[float, float]] = []
    append = BlindAppender.append

    def slow_disk(self: BlindAppender, table):  # type: ignore[no-untyped-def]
        start = time.monotonic()
        time.sleep(0.3)  # waiting, not computing
        version = append(self, table)
        spans.append((start, time.monotonic()))
        return version

    monkeypatch.setattr(BlindAppender, "append", slow_disk)
    sink = DeltaSink(tmp_path / "t", agent_id="a")
    sink.pace(0.02, 10**6)
    await sink.open()
    first = await sink.send([r.finalize() for r in make_records(5)])
    await asyncio.sleep(0.05)  # the first commit runs; the second batch waits for it
    second = await sink.send([r.finalize() for r in make_records(5, 5)])
    await asyncio.gather(first, second)
    await sink.close()
    assert len(spans) == 2
    assert spans[1][0] - spans[0][1] < 0.15  # resting as long as the first took would be >= 0.3 s
    assert _seqs(tmp_path / "t") == list(range(10))


_FIRST_WRITE = """
import asyncio, json, sys
from pathlib import Path
from iot_connector.sinks.delta import DeltaSink
from tests.edge.helpers import make_records

async def main():
    sink = DeltaSink(Path(sys.argv[1]), agent_id="a")
    await sink.open()
    before = set(sys.modules)
    await sink.write([r.finalize() for r in make_records(3)])
    await sink.close()
    print(json.dumps(sorted(set(sys.modules) - before)))

asyncio.run(main())
"""


def test_the_first_batch_imports_nothing(tmp_path: Path) -> None:
    """pyarrow imports pandas on its first list conversion (~0.2 s holding the GIL): the sink does that when it
    opens, so the first records do not wait for it (a fresh process: this one has imported everything)."""
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_WRITE, str(tmp_path / "t")],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout)
    assert [name for name in imported if name.split(".")[0] in ("pandas", "numpy", "pyarrow")] == []


async def test_the_tail_of_a_burst_is_committed_without_waiting_out_the_window(tmp_path: Path) -> None:
    """A backlog drains in full batches; the partial one left at its end goes at once instead of waiting out
    the window, while a steady trickle of partial batches stays paced by it."""
    sink = DeltaSink(tmp_path / "t", agent_id="a")
    sink.pace(2.0, 100)  # a long window: waiting it out would show
    await sink.open()
    loop = asyncio.get_running_loop()
    await sink.write([r.finalize() for r in make_records(100)])  # full: committed at once
    started = loop.time()
    await sink.write([r.finalize() for r in make_records(30, 100)])  # the burst's tail
    assert loop.time() - started < 1.0
    partial = await sink.send([r.finalize() for r in make_records(30, 130)])  # after a partial commit: paced
    await asyncio.sleep(0.5)
    assert not partial.done()
    await asyncio.wait_for(partial, 5)
    await sink.close()
    assert _seqs(tmp_path / "t") == list(range(160))
