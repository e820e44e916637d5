"""Rejected messages kept for a human: one JSON line each in `dead-letters.jsonl` in the spool folder.

Why a file beside the acknowledgement: a rejected message is acknowledged like a delivered one (a
redelivery cannot fix it, and holding it would block everything behind it), so without this file its
bytes would be gone and only a log line would say why. The file is capped (`max_bytes`): when full it
becomes `dead-letters.1.jsonl` (replacing the previous one) and a new file starts, so a flood of garbage
costs at most twice the cap on disk. Written without fsync: forensics, not a delivery guarantee.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
from pathlib import Path
from typing import BinaryIO

import orjson

from iot_connector.model import now_us

log = logging.getLogger(__name__)
FILE_NAME = "dead-letters.jsonl"
PREVIOUS_NAME = "dead-letters.1.jsonl"
PAYLOAD_LIMIT = 64 << 10  # bytes of one payload kept (the rest is counted, not stored)


class DeadLetters:
    def __init__(self, directory: Path, max_bytes: int):
        self.path = Path(directory) / FILE_NAME
        self.max_bytes = max_bytes
        self.written = 0
        self._size = 0
        self._file: BinaryIO | None = None
        self._failed = False

    def write(self, source: str, where: str, reason: str, payload: bytes | None) -> None:
        """Append one entry: when, source, where (topic, register, node), why, and the payload (base64)."""
        entry: dict[str, object] = {"ts_us": now_us(), "source": source, "where": where, "reason": reason}
        if payload is not None:
            entry["payload_b64"] = base64.b64encode(payload[:PAYLOAD_LIMIT]).decode()
            entry["payload_bytes"] = len(payload)
        line = orjson.dumps(entry) + b"\n"
        try:
            if self._file is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115 (kept open: floods cost no open/close)
                self._size = self._file.tell()
            if self._size + len(line) > self.max_bytes and self._size:
                self._file.close()
                os.replace(self.path, self.path.with_name(PREVIOUS_NAME))
                self._file = open(self.path, "ab", buffering=0)  # noqa: SIM115
                self._size = 0
            self._file.write(line)  # unbuffered: in the OS at once, so a crash right after keeps it
            self._size += len(line)
            self.written += 1
            self._failed = False
        except OSError as exc:  # the count and the log line still tell; say once why the file is missing
            if not self._failed:
                log.error("dead-letter file %s cannot be written: %s", self.path, exc)
            self._failed = True
            self.close()

    def close(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
