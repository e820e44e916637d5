"""Appends to the agent's Delta table without delta-rs' writer: pyarrow writes the Parquet file, and one log
entry (commitInfo + add, with stats) is put into `_delta_log` atomically.

Why: a `write_deltalake` commit of 200 records costs 17-41 ms of CPU (a DataFusion plan, listing the log,
updating the table state), this ~1-2 ms (benchmarks/edge_delta_commit_cost.py). At the deployment guide's
5,000 msg/s that is most of a core against a few percent, and the difference between a p99 of ~80 ms and one
well under 50 ms (issue 17).

Only where a blind append is all a correct writer has to do (`unsupported` says why not otherwise): the
agent's own schema, no partitions, and no writer feature the append would have to honour (constraints,
generated or identity columns, column mapping, deletion vectors, row tracking, in-commit timestamps...).
Everything else stays delta-rs': creating the table, reads, compaction, checkpoints, vacuum, and the appends
to any table this module declines.

The commit is Delta's protocol for a file system with put-if-absent: the Parquet file and the entry are
written and flushed, then the entry is hard-linked to `<version>.json`. The link fails if another writer
took that version (the upkeep's compaction, a second agent); the append then reads that commit and tries the
next version. A blind append conflicts with nothing but a change of protocol or metadata, which
`TableChanged` sends back to the check. A crash leaves at most an orphan Parquet file (vacuumed later) or a
temporary entry (removed by the next `open`), never a half-written or dangling entry: the directory is
flushed after the link, so an acknowledged commit survives a power cut.
"""

from __future__ import annotations

import errno
import json
import math
import os
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable
from deltalake import Schema as DeltaSchema

from iot_connector import __version__
from iot_connector.model import RECORD_SCHEMA

# Writer features (protocol 3/7) a blind append of the agent's columns honours by doing nothing: appendOnly
# (it only appends), invariants / checkConstraints / generatedColumns / identityColumns (checked absent from
# the schema and configuration below), changeDataFeed (inserts are read from the add actions), timestampNtz
# and variantType (types the agent's schema does not have), vacuumProtocolCheck (binds vacuums only).
SAFE_WRITER_FEATURES = frozenset(
    {"appendOnly", "invariants", "checkConstraints", "changeDataFeed", "generatedColumns", "identityColumns"}
    | {"timestampNtz", "variantType", "vacuumProtocolCheck"}
)
STATS_STRING_BYTES = 64  # longer strings get bounds cut to this many bytes of UTF-8, as delta-rs' writer does
# Parquet dictionary encoding only where values repeat (names, units, quality, the attribute maps): on record
# ids, readings and timestamps it is wasted work. 35 % less CPU for the Parquet writer and 30 % smaller files
# than dictionaries on every column (pyarrow's default), measured on 20,000 MQTT-like records.
DICTIONARY_COLUMNS = (
    "agent_id", "source_id", "protocol", "endpoint", "tag_id", "tag_path", "data_type", "value_string", "quality",
    "unit", "attributes.key_value.key", "attributes.key_value.value",
)  # fmt: skip
TEMP_PREFIX = ".iot-append-"  # entries being written; readers ignore names that are not <version>.json


class TableChanged(Exception):
    """Another writer changed the table's protocol or metadata: check it again before appending."""


class LinksUnsupported(Exception):
    """The file system cannot hard-link (some network and FUSE mounts): this appender cannot commit there."""


def unsupported(table: DeltaTable) -> str | None:
    """Why this module must not append to `table` (delta-rs then does), or None."""
    protocol = table.protocol()
    writer = protocol.min_writer_version
    features = set(protocol.writer_features or ())
    if writer in (5, 6) or (writer == 7 and not features <= SAFE_WRITER_FEATURES) or writer > 7:
        extra = sorted(features - SAFE_WRITER_FEATURES)
        return f"writer protocol {writer}{' with ' + ', '.join(extra) if extra else ''}"
    metadata = table.metadata()
    if metadata.partition_columns:
        return f"partitioned by {', '.join(metadata.partition_columns)}"
    constraints = sorted(k for k in metadata.configuration if k.startswith("delta.constraints."))
    if constraints:
        return f"CHECK constraints ({', '.join(constraints)})"
    if metadata.configuration.get("delta.columnMapping.mode", "none") != "none":
        return "column mapping"
    schema = json.loads(table.schema().to_json())
    if schema != _AGENT_SCHEMA:  # field metadata (invariants, generated, identity) included
        return "its schema differs from the agent's"
    return None


_AGENT_SCHEMA = json.loads(DeltaSchema.from_arrow(RECORD_SCHEMA).to_json())


def file_stats(table: pa.Table) -> str:
    """The add action's `stats`, as Delta readers use them to skip files, the same as delta-rs writes for the
    same rows (a test compares them): row count, null count, and min and max of each primitive column with a
    value. Like the Parquet statistics delta-rs copies, NaN is left out of min and max, a zero min is -0.0,
    an infinity is null (JSON has none), and strings are cut to STATS_STRING_BYTES (`_string_bounds`).
    Beware: delta-rs' reader skips a file whose min or max is missing or null for a filtered column, as it
    does for the tables it writes itself."""
    mins: dict[str, object] = {}
    maxs: dict[str, object] = {}
    nulls: dict[str, int] = {}
    for field, column in zip(table.schema, table.columns):
        if pa.types.is_nested(field.type):
            continue
        nulls[field.name] = column.null_count
        if column.null_count == len(column):
            continue
        low, high = (value.as_py() for value in pc.min_max(column).values())
        if isinstance(low, float):
            if math.isnan(low):  # only NaN
                continue
            low, high = _finite_or_none(low), _finite_or_none(high)
            low = -0.0 if low == 0 else low
        elif isinstance(low, str):
            low, high = _string_bounds(low, high)
        mins[field.name], maxs[field.name] = low, high
    stats = {"numRecords": table.num_rows, "minValues": mins, "maxValues": maxs, "nullCount": nulls}
    return json.dumps(stats, allow_nan=False, separators=(",", ":"))


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _string_bounds(low: str, high: str) -> tuple[str, str]:
    """Strings over STATS_STRING_BYTES of UTF-8 are cut at a character boundary; the max then has its last
    character that can be incremented without changing its width incremented, so it stays an upper bound
    (kept whole if none can)."""
    return _utf8_prefix(low), _upper_bound(high)


def _utf8_prefix(text: str) -> str:
    encoded = text.encode()
    if len(encoded) <= STATS_STRING_BYTES:
        return text
    return encoded[:STATS_STRING_BYTES].decode(errors="ignore")  # a split last character is dropped


def _upper_bound(text: str) -> str:
    prefix = _utf8_prefix(text)
    if prefix == text:
        return text
    for i in range(len(prefix) - 1, -1, -1):
        code = ord(prefix[i]) + 1
        if code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF and len(chr(code).encode()) == len(prefix[i].encode()):
            return prefix[:i] + chr(code)
    return text


class BlindAppender:
    """Appends to one table; `version` is the last version it knows exists (it starts above it)."""

    def __init__(self, path: Path, version: int):
        self.path = path
        self.log = path / "_delta_log"
        self.version = version

    def remove_temporaries(self, older_than_s: float = 60.0) -> None:
        """Entries a crash left before their link (or after it: then a second name of a committed entry).
        Recent ones may be another writer's, about to be linked."""
        cutoff = time.time() - older_than_s
        for entry in self.log.glob(f"{TEMP_PREFIX}*"):
            if entry.stat().st_mtime < cutoff:
                entry.unlink(missing_ok=True)

    def append(self, table: pa.Table) -> int:
        """Commit `table` as one Parquet file; returns the version it landed at. On any failure the file is
        removed again (nothing refers to it)."""
        name = f"part-00000-{uuid.uuid4()}-c000.snappy.parquet"
        data = self.path / name
        pq.write_table(table, data, compression="snappy", use_dictionary=list(DICTIONARY_COLUMNS))
        try:
            _flush(data)
            self.version = self._commit(name, data.stat().st_size, file_stats(table))
        except BaseException:
            data.unlink(missing_ok=True)
            raise
        return self.version

    def _commit(self, name: str, size: int, stats: str) -> int:
        now = int(time.time() * 1000)
        info = {
            "timestamp": now,
            "operation": "WRITE",
            "operationParameters": {"mode": "Append"},
            "isBlindAppend": True,
            "engineInfo": f"iot-connector/{__version__}",
        }
        add = {"path": name, "partitionValues": {}, "size": size, "modificationTime": now, "dataChange": True}
        add["stats"] = stats
        body = f'{{"commitInfo":{json.dumps(info)}}}\n{{"add":{json.dumps(add)}}}\n'.encode()
        temporary = self.log / f"{TEMP_PREFIX}{uuid.uuid4()}.json"
        with open(temporary, "xb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            version = self._link(temporary)
        finally:
            temporary.unlink(missing_ok=True)
        _flush(self.log)
        return version

    def _link(self, temporary: Path) -> int:
        """Link the entry at the first free version above the last known one."""
        version, checkpoint = self.version, self._last_checkpoint()
        if checkpoint >= version:  # covered by a checkpoint, whose entry may be deleted as expired
            version = checkpoint
        elif not (self.log / f"{version:020d}.json").exists():  # the last commit this writer knows of
            raise TableChanged(f"log entry {version} of {self.path} is gone: the table was replaced")
        while True:
            version += 1
            entry = self.log / f"{version:020d}.json"
            try:
                os.link(temporary, entry)
                return version
            except FileExistsError:
                if _changes_protocol_or_metadata(entry):
                    raise TableChanged(f"version {version} of {self.path} changed its protocol or metadata") from None
            except OSError as exc:
                if exc.errno in (errno.EPERM, errno.EOPNOTSUPP):  # link(2): "does not support hard links"
                    raise LinksUnsupported(f"its file system cannot hard-link ({exc.strerror})") from exc
                raise

    def _last_checkpoint(self) -> int:
        """Log entries up to the last checkpoint may have been deleted as expired: a version number below it
        must never be written again (readers start from the checkpoint and would not see it)."""
        try:
            return int(json.loads((self.log / "_last_checkpoint").read_bytes())["version"])
        except FileNotFoundError:
            return -1


def _changes_protocol_or_metadata(entry: Path) -> bool:
    with open(entry, "rb") as fh:
        return any(next(iter(json.loads(line)), None) in ("protocol", "metaData") for line in fh if line.strip())


def _flush(path: Path) -> None:
    """fsync a file or a directory (Linux flushes through a read-only descriptor)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
