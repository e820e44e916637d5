"""Local Delta table: the embedded default, so the agent is useful without Databricks.

Append-only with RECORD_SCHEMA. delta-rs creates, reads and maintains the table (`delta_upkeep`); the appends
are committed by `delta_append` (pyarrow Parquet + one atomic log entry: ~2 ms of CPU against delta-rs'
writer's 17-41 ms) unless the table has something only delta-rs' writer handles, which is logged and shown
in `iot_delta_blind_append`.

Batches the pipeline sends while a commit runs are committed together in the next one (group commit): each
commit has a fixed cost and makes a file, so under load fewer, larger commits carry more rows per
CPU-second. Commits are paced (`pace`): after a quiet period a batch is committed at once (leading edge);
under a steady flow a commit starts no sooner than one pipeline window after the previous one started, and
no sooner than the previous one's CPU time after it ended, unless a full batch is waiting or the previous
commit was full (the tail of a burst goes at once). So the window bounds the commit rate, and commits never
take more than about half a core. The rest follows CPU, not wall time: a commit mostly waits for its fsyncs,
which cost no CPU, and resting that long too only added latency.

A commit is atomic, so a crash mid-write leaves at most an orphan Parquet file and its batches are re-sent
from the spool (same record_id) on restart. A failed commit fails its batches and every batch queued behind
it, so the table never gets a later batch before an earlier one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Sequence
from operator import attrgetter
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable, PostCommitHookProperties, write_deltalake
from deltalake.exceptions import DeltaError

from iot_connector.config.models import DeltaSinkSettings
from iot_connector.metrics import Metrics
from iot_connector.model import RECORD_SCHEMA, SCHEMA_VERSION, Record
from iot_connector.sinks.base import Sink, SinkError
from iot_connector.sinks.delta_append import BlindAppender, LinksUnsupported, TableChanged, unsupported
from iot_connector.sinks.delta_upkeep import TableUpkeep, table_properties

log = logging.getLogger(__name__)


def records_table(records: Sequence[Record], agent_id: str) -> pa.Table:
    """The batch as RECORD_SCHEMA columns, built column by column (one C-level pass per column): about 3x
    cheaper than a dict per row through `Table.from_pylist`."""
    n = len(records)
    columns = []
    for field in RECORD_SCHEMA:
        if field.name == "agent_id":
            values: list = [agent_id] * n
        elif field.name == "schema_version":
            values = [SCHEMA_VERSION] * n
        elif field.name == "attributes":
            columns.append(_maps(list(map(_ATTRIBUTES, records)), field.type))
            continue
        else:
            values = list(map(attrgetter(field.name), records))
        columns.append(pa.array(values, type=field.type))
    return pa.Table.from_arrays(columns, schema=RECORD_SCHEMA)


_ATTRIBUTES = attrgetter("attributes")


def _maps(dicts: list[dict[str, str]], map_type: pa.DataType) -> pa.Array:
    """The attributes column. Sources share one dict among many records (MQTT: per QoS and retain flag,
    Modbus: per register), so each distinct dict object is converted once and repeated with `take`: ~0.3 µs
    a record less than converting every dict."""
    ids = list(map(id, dicts))
    distinct = dict(zip(ids, dicts))  # id -> dict, in first-seen order
    if len(distinct) * 4 > len(dicts):  # mostly distinct: nothing to share
        return pa.array(dicts, type=map_type)
    position = dict(zip(distinct, range(len(distinct))))
    indices = pa.array(list(map(position.__getitem__, ids)), type=pa.int32())
    return pa.array(list(distinct.values()), type=map_type).take(indices)


UPKEEP_GAP_S = 0.01  # the least time between two commit starts while the upkeep compacts or vacuums
REOPEN_EVERY = 200  # appends through one delta-rs table object before it is opened afresh (see DeltaSink)
_NO_CHECKPOINT = PostCommitHookProperties(create_checkpoint=False, cleanup_expired_logs=False)  # the upkeep's job
# What a commit can fail with: the disk, the table removed or replaced, a damaged log or Parquet write.
_COMMIT_ERRORS = (OSError, DeltaError, TableChanged, pa.ArrowException, ValueError, KeyError)


class DeltaSink(Sink):
    name = "delta"

    def __init__(
        self,
        path: Path,
        agent_id: str,
        settings: DeltaSinkSettings | None = None,
        metrics: Metrics | None = None,
    ):
        """`settings`: the upkeep's (`delta_upkeep`); the path is given resolved."""
        self.path = Path(path)
        self.agent_id = agent_id
        self.settings = settings or DeltaSinkSettings()
        self.metrics = metrics
        self.upkeep = TableUpkeep(self.path, self.settings, metrics)
        # How the appends are committed, chosen by `_load` at open and after a failure or a change of the
        # table: by `_appender`, or else by delta-rs' writer through `_table`, kept open between appends so
        # each only reads the commits since the last one (halves its CPU per commit). But a delta-rs table
        # object gets slower with every commit it has seen since it was opened (12 ms per 200-row append
        # when fresh, 65 ms 800 appends later): it is replaced by the upkeep's fresh object after each
        # checkpoint (every 100 commits), or re-opened after REOPEN_EVERY if none came.
        self._appender: BlindAppender | None = None
        self._declined: str | None = None  # why the appender cannot work here at all (for this process)
        self._table: DeltaTable | None = None
        self._appends_since_open = 0
        self._queue: list[tuple[pa.Table, asyncio.Future[None]]] = []  # batches waiting for the next commit
        self._committer: asyncio.Task[None] | None = None
        self._interval_s = 0.0  # the smallest time between two commit starts (`pace`)
        self._full_rows = 0  # ... unless this many rows wait
        self._last_start = self._last_end = -float("inf")
        self._last_cpu = 0.0  # CPU seconds the last commit took
        self._last_rows = 0  # rows it committed

    def pace(self, interval_s: float, full_rows: int) -> None:
        self._interval_s, self._full_rows = interval_s, full_rows

    async def open(self) -> None:
        await asyncio.to_thread(self._open_sync)

    def _open_sync(self) -> None:
        try:
            if not DeltaTable.is_deltatable(str(self.path)):
                self.path.mkdir(parents=True, exist_ok=True)
                properties = table_properties(self.settings)
                DeltaTable.create(str(self.path), schema=RECORD_SCHEMA, mode="ignore", configuration=properties)
            self._load()
            # pyarrow imports pandas (~0.2 s, holding the GIL) on its first conversion of a Python list: here,
            # at start-up, instead of stalling the event loop at the first batch.
            records_table([], self.agent_id)
        except _COMMIT_ERRORS as exc:
            raise SinkError(f"cannot create the Delta table at {self.path}: {exc}", error_type="delta_open") from exc

    def _load(self) -> None:
        """Open the table at its latest version and choose how to append to it."""
        table = DeltaTable(str(self.path))
        reason = self._declined or unsupported(table)
        if reason is None:
            self._appender, self._table = BlindAppender(self.path, table.version()), None
            self._appender.remove_temporaries()
        else:
            log.warning(
                "Delta table %s: %s, so the agent appends through delta-rs' writer (~20 ms of CPU a commit"
                " instead of ~2: expect higher latency at high rates)",
                self.path,
                reason,
            )
            self._appender, self._table, self._appends_since_open = None, table, 0
        if self.metrics is not None:
            self.metrics.delta_blind_append.set(int(reason is None))

    async def write(self, records: Sequence[Record]) -> None:
        await (await self.send(records))

    async def send(self, records: Sequence[Record]) -> Awaitable[None]:
        """Queue the batch for the next commit; the returned future resolves once that commit landed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((records_table(records, self.agent_id), done))
        if self._committer is None or self._committer.done():
            self._committer = asyncio.create_task(self._commit_queued(), name="delta-commit")
        return done

    async def _commit_queued(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            # Rest as long as the last commit's CPU, and at least the window since it started: under load
            # commits grow instead of running back to back (each has a fixed cost at any size). After a full
            # commit (a backlog draining) the window is skipped: what is left is the burst's tail, and making
            # it wait out the window added up to 200 ms to every drain.
            start = self._last_end + self._last_cpu
            if self._last_rows < self._full_rows:
                start = max(start, self._last_start + self._interval_s)
            wait = start - loop.time()
            if wait > 0 and sum(table.num_rows for table, _ in self._queue) < self._full_rows:
                await asyncio.sleep(wait)  # batches sent meanwhile join this commit
            if self.upkeep.committing:  # leave the compaction room to commit (TableUpkeep.committing)
                await asyncio.sleep(max(0.0, self._last_start + UPKEEP_GAP_S - loop.time()))
            self._last_start = loop.time()
            group, self._queue = self._queue, []
            try:
                rows = pa.concat_tables([table for table, _ in group])
                self._last_cpu, self._last_rows = await self._append(rows), rows.num_rows
            except SinkError as exc:
                group += self._queue  # later batches must not land before the failed ones
                self._queue = []
                for _, done in group:
                    _fail(done, exc)
                continue
            self._last_end = loop.time()
            self.upkeep.committed()
            for _, done in group:
                if not done.done():  # the pipeline may have stopped waiting for it
                    done.set_result(None)

    async def _append(self, table: pa.Table) -> float:
        """Commit `table`; returns the CPU seconds it took."""
        try:
            return await asyncio.to_thread(self._timed_append, table)
        except _COMMIT_ERRORS as exc:
            self._appender = self._table = None  # the next append loads the table afresh from its path
            raise SinkError(f"Delta append to {self.path} failed: {exc}", error_type="delta_write") from exc

    def _timed_append(self, table: pa.Table) -> float:
        """delta-rs' writer also works on its runtime's threads: its wall time stands in for its CPU."""
        cpu, wall = time.thread_time(), time.perf_counter()
        self._append_sync(table)
        return time.thread_time() - cpu if self._appender is not None else time.perf_counter() - wall

    def _append_sync(self, table: pa.Table) -> None:
        if self._appender is None and self._table is None:
            self._load()
        if self._appender is not None:
            self.upkeep.fresh = None  # only delta-rs' writer keeps a table object
            try:
                self._appender.append(table)
                return
            except LinksUnsupported as exc:  # nothing was committed: this batch goes through delta-rs' writer
                self._declined = str(exc)
                self._load()
            except TableChanged as changed:
                log.info("Delta table %s: %s; checking it again", self.path, changed)
                self._load()
                if self._appender is not None:
                    self._appender.append(table)  # changed again at once: a failed batch, retried
                    return
        self._write_deltalake(table)

    def _write_deltalake(self, table: pa.Table) -> None:
        fresh, self.upkeep.fresh = self.upkeep.fresh, None
        if fresh is not None:  # opened by the upkeep after its checkpoint
            self._table, self._appends_since_open = fresh, 0
        elif self._table is None or self._appends_since_open >= REOPEN_EVERY:  # no upkeep step came through
            self._table, self._appends_since_open = DeltaTable(str(self.path)), 0
        write_deltalake(self._table, table, mode="append", post_commithook_properties=_NO_CHECKPOINT)
        self._appends_since_open += 1

    async def close(self) -> None:
        """Wait for the commit in progress; batches still queued are not committed (they stay in the spool)."""
        queued, self._queue = self._queue, []
        for _, done in queued:
            _fail(done, SinkError("Delta sink closed before committing", error_type="delta_closed"))
        if self._committer is not None:
            with contextlib.suppress(Exception):
                await self._committer
            self._committer = None
        await self.upkeep.close()
        self._appender = self._table = None


def _fail(done: asyncio.Future[None], exc: BaseException) -> None:
    if not done.done():
        done.set_exception(exc)
        done.exception()  # retrieved: no "never retrieved" noise if the pipeline no longer waits for it
