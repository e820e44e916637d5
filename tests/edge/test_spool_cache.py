"""The spool's memory copy (kept per append) and its disk agree: random appends and reads, with a copy that
holds none, some or all of the records and segments that roll, give every record once, in order, and read
positions that a restarted spool resumes from exactly."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from iot_connector.pipeline.spool import Spool
from tests.edge.helpers import make_records, seqs


@pytest.mark.parametrize("memory_records", [0, 1, 7, 60, 100_000])
async def test_random_appends_and_reads_agree_with_the_disk(tmp_path: Path, memory_records: int) -> None:
    rng = random.Random(memory_records)
    spool = Spool(tmp_path, durability="write", memory_records=memory_records, segment_bytes=4096)
    spool.open()
    appended = read = 0
    got: list[int] = []
    for step in range(200):
        if rng.random() < 0.5 or spool.pending == 0:
            n = rng.randint(1, 40)
            records = make_records(n, appended)
            spool.append(records, spool.encode(records))
            appended += n
        else:
            batch, position = spool.read(rng.randint(1, 50))
            got += seqs(batch)
            read += len(batch)
            assert spool.pending == appended - read
            if step % 20 == 0:  # commit here and restart: the new spool resumes right after `position`
                spool.commit(position)
                await spool.close()
                spool = Spool(tmp_path, durability="write", memory_records=memory_records, segment_bytes=4096)
                spool.open()
                assert spool.pending == appended - read
    while spool.pending:
        batch, _ = spool.read(rng.randint(1, 50))
        got += seqs(batch)
    assert got == list(range(appended))
    await spool.close()
