"""ZeroBus sink with the real `databricks-zerobus-ingest-sdk` (asyncio API), protobuf records.

Why this shape: a batch is encoded with the descriptor generated from RECORD_FIELDS (model_proto; spooled
records already carry their bytes, `Record.wire`, and only get the send-time columns appended), sent as
one or more `ingest_records_offset` calls (split under the 10,420,224-byte payload limit), and `write`
returns only after `wait_for_offset` confirmed the durability ack: that ack is what commits the spool.
On a retriable failure the stream is closed and a fresh one is created on the next write (the pipeline
re-sends the batch; duplicates carry the same record_id). Non-retriable errors (auth, missing table,
schema) are reported as such. The client secret is never logged and is scrubbed from error messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Iterator, Sequence

from zerobus.sdk.aio import (
    NonRetriableException,
    StreamConfigurationOptions,
    TableProperties,
    ZerobusException,
    ZerobusSdk,
    ZerobusStream,
)

from iot_connector.config.models import ProxySettings, ZerobusSinkSettings
from iot_connector.model import Record
from iot_connector.model_proto import encode_records, record_message_class
from iot_connector.sinks.base import Sink, SinkError
from iot_connector.wording import plural

log = logging.getLogger(__name__)
APPLICATION_NAME = "iot-connector"


def apply_proxy(proxy: ProxySettings) -> None:
    """The SDK's gRPC channel and token requests honour the standard proxy variables; set them from config."""
    if proxy.url:
        for name in ("grpc_proxy", "https_proxy", "HTTPS_PROXY"):
            os.environ[name] = proxy.url
    if proxy.no_proxy:
        for name in ("no_grpc_proxy", "no_proxy", "NO_PROXY"):
            os.environ[name] = proxy.no_proxy


def chunks_by_size(payloads: list[bytes], max_bytes: int) -> Iterator[list[bytes]]:
    """Consecutive groups whose total size stays under the SDK's per-request payload limit."""
    if payloads and sum(map(len, payloads)) <= max_bytes:  # the usual case, without a Python loop
        yield payloads
        return
    group: list[bytes] = []
    size = 0
    for payload in payloads:
        if group and size + len(payload) > max_bytes:
            yield group
            group, size = [], 0
        group.append(payload)
        size += len(payload)
    if group:
        yield group


class ZerobusSink(Sink):
    name = "zerobus"

    def __init__(self, settings: ZerobusSinkSettings, agent_id: str):
        self.settings = settings
        self.agent_id = agent_id
        self._sdk: ZerobusSdk | None = None
        self._stream: ZerobusStream | None = None

    def _scrub(self, message: str) -> str:
        secret = self.settings.client_secret.get_secret_value()
        return message.replace(secret, "***") if secret else message

    def _options(self) -> StreamConfigurationOptions:
        s = self.settings
        return StreamConfigurationOptions(
            recovery=True,
            recovery_retries=s.recovery_retries,
            recovery_backoff_ms=s.recovery_backoff_ms,
            recovery_timeout_ms=s.recovery_timeout_ms,
            server_lack_of_ack_timeout_ms=s.server_lack_of_ack_timeout_ms,
        )

    async def open(self) -> None:
        apply_proxy(self.settings.proxy)
        if self._sdk is None:
            self._sdk = ZerobusSdk(
                self.settings.zerobus_endpoint, self.settings.workspace_url, application_name=APPLICATION_NAME
            )
        await self._create_stream()

    async def _create_stream(self) -> None:
        assert self._sdk is not None
        s = self.settings
        properties = TableProperties(s.table, descriptor_proto=record_message_class().DESCRIPTOR)
        try:
            self._stream = await self._sdk.create_stream(
                s.client_id, s.client_secret.get_secret_value(), properties, self._options()
            )
        except Exception as exc:
            raise self._error(exc, f"cannot open a ZeroBus stream to {s.table} at {s.zerobus_endpoint}") from None
        log.info("zerobus stream opened to %s", s.table)

    def _error(self, exc: BaseException, context: str) -> SinkError:
        message = f"{context}: {self._scrub(str(exc))}"
        if isinstance(exc, NonRetriableException):
            return SinkError(message, error_type="zerobus_non_retriable", retriable=False)
        if isinstance(exc, ZerobusException):
            return SinkError(message, error_type="zerobus_unavailable")
        return SinkError(message, error_type=f"zerobus_{type(exc).__name__}")

    async def write(self, records: Sequence[Record]) -> None:
        await (await self.send(records))

    async def send(self, records: Sequence[Record]) -> Awaitable[None]:
        """Encode and hand the batch to the SDK now (in call order); the returned task waits for its ack."""
        if self._stream is None:
            await self._create_stream()
        try:
            if all(r.wire is not None for r in records):  # spooled: their bytes only get the send-time columns
                payloads = encode_records(records, self.agent_id)
            else:  # memory buffer: encode in a worker thread
                payloads = await asyncio.to_thread(encode_records, records, self.agent_id)
        except ValueError as exc:
            raise SinkError(str(exc), error_type="zerobus_invalid_record", retriable=False) from None
        stream = self._stream
        if stream is None:  # an earlier batch's failed ack dropped the stream while this one was encoded
            raise SinkError(
                f"ZeroBus stream to {self.settings.table} was closed by an earlier failure; "
                f"{plural(len(records), 'record')} not sent",
                error_type="zerobus_unavailable",
            )
        try:
            last = None
            for group in chunks_by_size(payloads, self.settings.max_batch_bytes):
                last = await stream.ingest_records_offset(group)
        except Exception as exc:
            raise await self._broken(stream, exc, len(records)) from None
        return asyncio.ensure_future(self._acked(stream, last, len(records)))

    async def _acked(self, stream: ZerobusStream, offset: int | None, count: int) -> None:
        if offset is None:
            return
        try:
            await stream.wait_for_offset(offset)
        except Exception as exc:
            raise await self._broken(stream, exc, count) from None

    async def _broken(self, stream: ZerobusStream, exc: BaseException, count: int) -> SinkError:
        """Forget a failed stream (the next send creates a fresh one) and describe the failure."""
        current = self._stream is stream  # a flag, not `if ... is stream:` (mypy would narrow `stream` to Optional)
        if current:
            self._stream = None
            with contextlib.suppress(Exception):
                await stream.close()
        return self._error(exc, f"ZeroBus ingest of {plural(count, 'record')} into {self.settings.table} failed")

    async def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            try:
                await stream.close()
            except Exception as exc:
                log.warning("zerobus stream close: %s", self._scrub(str(exc)))
