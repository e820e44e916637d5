"""OPC UA source (asyncua 2.1): subscriptions in iterator mode, or polling.

Two reconnect paths, one schedule: while a session lives, asyncua's supervisor resumes it after a lost
connection (ActivateSession on a new channel, else a new session) and restores the subscription, which keeps
what the server queued meanwhile (Republish); its backoff is capped at our `reconnect_max_delay_s`
(session.py). Its word is not trusted: after each resume we re-read the namespace array and, if one of ours
moved, end the session so `Source.run` builds a new one from the URIs (node ids in config are `nsu=` form);
and the subscription must answer a Publish (data or keep-alive) within a few keep-alive periods, after a
resume and at any time, or the session is dropped the same way (liveness.py: asyncua can report CONNECTED
with no subscription behind it, a silent stall). While asyncua resumes, the server's TCP port is probed: once
it has accepted connections for longer than asyncua's longest wait plus an attempt and asyncua is still not
CONNECTED (an attempt can hang for good), the session is dropped too. A first connect that fails is retried
by `Source.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Sequence
from urllib.parse import urlsplit

from asyncua import Client, ua
from asyncua.client.ua_client import UaClientState
from asyncua.common.subscription import OverflowPolicy, StatusChangeEvent, Subscription

from iot_connector.compat.asyncua import (
    DataChangeBatch,
    monitored_item_request,
    no_stale_subscription_check,
    whole_notifications,
)
from iot_connector.model import Record
from iot_connector.sources.base import Emit, PartialSuccess, Source, probe
from iot_connector.sources.opcua.config import BrowseConfig, OpcuaConfig
from iot_connector.sources.opcua.liveness import (
    KEEPALIVE_S,
    RESUME_ATTEMPT_S,
    SILENT_KEEPALIVES,
    PublishClock,
    ResumeStuck,
    SubscriptionSilent,
    keepalive_count,
)
from iot_connector.sources.opcua.nodes import Tag, build_tags, discover
from iot_connector.sources.opcua.session import new_client
from iot_connector.sources.opcua.values import is_good, record_from
from iot_connector.wording import plural

log = logging.getLogger(__name__)

_DEADBAND = {"none": ua.DeadbandType.None_, "absolute": ua.DeadbandType.Absolute, "percent": ua.DeadbandType.Percent}
_CONNECT_ERRORS = (OSError, asyncio.TimeoutError, ua.UaError, ConnectionError, ValueError)
LIFETIME_COUNT = 10000  # publishing intervals the server keeps a subscription nobody publishes for (for a resume)


class NamespacesMoved(Exception):
    """The server's namespace array changed under a live session: node ids must be resolved again."""


class OpcuaSource(Source):
    protocol = "opcua"
    config: OpcuaConfig
    transient_errors = (*_CONNECT_ERRORS, NamespacesMoved)
    _subscription: Subscription | None = None  # of the current session, once created
    _clock = PublishClock()  # the current session's (each session gets its own)
    _silent_after_s = 0.0  # SILENT_KEEPALIVES revised keep-alive periods
    _quiet_since = 0.0  # time.monotonic() from which silence counts: subscription created or session resumed

    def __init__(self, config: OpcuaConfig, emit: Emit):
        super().__init__(config, emit)
        self._buffer: list[Record] = []
        self._ready = asyncio.Event()  # buffer has records
        self._room = asyncio.Event()  # buffer below max_pending
        self._room.set()
        self.tags: dict[ua.NodeId, Tag] = {}

    # --- lifecycle ---------------------------------------------------------------------------------------
    async def _connect(self) -> tuple[Client, list[str]]:
        client = await new_client(self.config)
        try:
            await client.connect()
            namespaces = await client.get_namespace_array()
        except AssertionError as exc:  # asyncua 2.1 when the server answers OpenSecureChannel with an error
            with contextlib.suppress(Exception):
                await client.disconnect()
            raise self._channel_refused() from exc
        except BaseException:
            with contextlib.suppress(Exception):
                await client.disconnect()
            raise
        return client, namespaces

    def _channel_refused(self) -> ConnectionError:
        """What a refused secure channel means, for the user: asyncua 2.1 reports it as a bare AssertionError
        when the server's error message does not parse (node-opcua's BadSecurityChecksFailed, tested)."""
        cfg = self.config
        if cfg.security_policy == "None":
            return ConnectionError(f"{cfg.endpoint} refused the secure channel")
        return ConnectionError(
            f"{cfg.endpoint} refused the secure channel ({cfg.security_policy}/{cfg.security_mode}); most likely "
            f"the server does not trust the client certificate: add cert_file {cfg.cert_file} to its trusted list"
        )

    async def session(self) -> None:
        self._subscription = None
        client, namespaces = await self._connect()
        no_stale_subscription_check(client)  # ours is `_check_publish_responses`
        self._clock = client.uaclient.observer = PublishClock()
        try:
            self.established()
            tags = await build_tags(client, self.config, namespaces)
            self.tags = {t.node_id: t for t in tags}
            self.health.details["tags"] = str(len(tags))
            await self._serve(client, namespaces, tags)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.disconnect(), 5)

    def probe_address(self) -> tuple[str, int]:
        parts = urlsplit(self.config.endpoint)
        return parts.hostname or "", parts.port or 4840

    async def _serve(self, client: Client, namespaces: list[str], tags: list[Tag]) -> None:
        """Run the reader, the emitter and the state watcher until stop or the first failure."""
        reader = self._subscribe(client, tags) if self.config.mode == "subscribe" else self._poll(client, tags)
        tasks = [
            asyncio.create_task(reader),
            asyncio.create_task(self._emit_forever()),
            asyncio.create_task(self._watch(client, namespaces)),
            asyncio.create_task(self._stopped.wait()),
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                task.result()  # re-raise a failure
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        if self._buffer:  # flush what was read before a clean stop
            await self._flush()

    # --- reading --------------------------------------------------------------------------------------
    def _push(self, record: Record) -> None:
        self._push_many([record])

    def _push_many(self, records: list[Record]) -> None:
        self._buffer.extend(records)
        self._ready.set()
        if len(self._buffer) >= self.config.max_pending:
            self._room.clear()

    def _base(self, tag: Tag) -> Record:
        return Record(
            source_id=self.config.name,
            protocol="opcua",
            endpoint=self.config.endpoint,
            tag_id=tag.tag_id,
            tag_path=tag.name,
            data_type="",
        )

    def _requests(self, client: Client, sub: Subscription, tags: Sequence[Tag]) -> list[ua.MonitoredItemCreateRequest]:
        requests = []
        for tag in tags:
            m = tag.monitoring
            mfilter = None
            if m.deadband_type not in (None, "none"):
                mfilter = ua.DataChangeFilter(
                    Trigger=ua.DataChangeTrigger.StatusValue,
                    DeadbandType=_DEADBAND[m.deadband_type],
                    DeadbandValue=m.deadband_value or 0.0,
                )
            request = monitored_item_request(
                sub,
                client.get_node(tag.node_id),
                ua.AttributeIds.Value,
                mfilter,
                m.queue_size or 0,
                ua.MonitoringMode.Reporting,
                m.sampling_interval_ms if m.sampling_interval_ms is not None else -1,
            )
            request.RequestedParameters.DiscardOldest = m.discard_oldest is not False
            requests.append(request)
        return requests

    async def _create_subscription(self, client: Client) -> Subscription:
        """A subscription with a keep-alive about every KEEPALIVE_S, and how long it may stay silent. The
        server may revise what was asked (and asyncua then asks again with its own keep-alive count, about 45
        minutes long): ModifySubscription asks for ours again and answers with what the server grants."""
        interval = self.config.publishing_interval_ms
        params = ua.CreateSubscriptionParameters(
            RequestedPublishingInterval=interval,
            RequestedLifetimeCount=LIFETIME_COUNT,
            RequestedMaxKeepAliveCount=keepalive_count(interval),
            MaxNotificationsPerPublish=10000,
            PublishingEnabled=True,
        )
        sub = await client.create_subscription(
            params,
            queue_maxsize=max(4, self.config.max_pending // 1000),  # whole notifications (up to 10,000 values each)
            overflow=OverflowPolicy.DROP_OLDEST,
        )
        interval = sub.parameters.RequestedPublishingInterval  # the server's, if it revised ours
        revised = await sub.update(
            ua.ModifySubscriptionParameters(
                SubscriptionId=sub.subscription_id,
                RequestedPublishingInterval=interval,
                RequestedLifetimeCount=LIFETIME_COUNT,
                RequestedMaxKeepAliveCount=keepalive_count(interval),
                MaxNotificationsPerPublish=10000,
            )
        )
        # what the server granted, for asyncua too (its stale-subscription check and its restore read these)
        sub.parameters.RequestedPublishingInterval = revised.RevisedPublishingInterval
        sub.parameters.RequestedMaxKeepAliveCount = revised.RevisedMaxKeepAliveCount
        keepalive_s = revised.RevisedPublishingInterval / 1000 * max(1, revised.RevisedMaxKeepAliveCount)
        self._silent_after_s = SILENT_KEEPALIVES * keepalive_s
        self._quiet_since = time.monotonic()
        self._subscription = sub
        return sub

    async def _subscribe(self, client: Client, tags: list[Tag]) -> None:
        sub = await self._create_subscription(client)
        whole_notifications(sub)
        size = self.config.monitored_items_batch_size  # big lists in one call hit BadTooManyOperations
        by_handle: dict[int, Tag] = {}  # client handles survive asyncua's subscription restore; NodeId hashes cost
        for start in range(0, len(tags), size):
            chunk = tags[start : start + size]
            requests = self._requests(client, sub, chunk)
            by_handle.update((r.RequestedParameters.ClientHandle, tag) for r, tag in zip(requests, chunk))
            results = await sub.create_monitored_items(requests)
            for tag, result in zip(chunk, results):
                if isinstance(result, ua.StatusCode):  # e.g. BadNodeIdUnknown: tell the user through a record
                    rec = self._base(tag)
                    rec.quality, rec.status_code = "BAD", result.value
                    self.health.last_error = f"cannot monitor {tag.tag_id}: {result.name}"
                    self._push(rec)
        async for event in sub:
            if not self.health.connected:  # the first values after asyncua resumed the session
                self._answered()
            if type(event) is DataChangeBatch:
                try:
                    records = [
                        record_from(self._base(tag), item.Value)
                        for item in event.items
                        if (tag := by_handle.get(item.ClientHandle)) is not None
                    ]
                except Exception:  # a value no conversion foresaw: lose only that item, and say so
                    records = self._records_each([(by_handle.get(i.ClientHandle), i.Value) for i in event.items])
                if event.replayed:
                    for rec in records:
                        rec.attributes["replayed"] = "true"
                self._push_many(records)
            elif isinstance(event, StatusChangeEvent):
                self.health.details["subscription_status"] = str(event.notification.Status)
            if not self._room.is_set():
                await self._room.wait()

    def _records_each(self, values: list[tuple[Tag | None, ua.DataValue]]) -> list[Record]:
        """Records of (tag, DataValue) pairs one at a time: one that does not convert is rejected alone."""
        records = []
        for tag, dv in values:
            if tag is None:
                continue
            try:
                records.append(record_from(self._base(tag), dv))
            except Exception as exc:
                self.reject(f"node {tag.tag_id}", f"{type(exc).__name__}: {exc}; value {dv!r:.200}")
        return records

    async def _poll(self, client: Client, tags: list[Tag]) -> None:
        loop = asyncio.get_running_loop()
        size = self.config.monitored_items_batch_size
        next_at = loop.time()
        while True:
            for start in range(0, len(tags), size):
                chunk = tags[start : start + size]
                values = await client.read_attributes([client.get_node(t.node_id) for t in chunk])
                self._push_many(self._records_each(list(zip(chunk, values))))
            await self._room.wait()
            next_at = max(next_at + self.config.poll_interval_s, loop.time())
            await asyncio.sleep(next_at - loop.time())

    async def _flush(self) -> None:
        batch, self._buffer = self._buffer, []
        self._ready.clear()
        self._room.set()
        await self.emit(batch)
        self.health.records_read += len(batch)
        self.health.last_record_at_us = batch[-1].edge_ts

    async def _emit_forever(self) -> None:
        """Emits whatever the reader buffered: the reader only yields once asyncua's queue is drained, so
        one emit carries a whole publish response (natural batching, no timers)."""
        while True:
            await self._ready.wait()
            if self._buffer:
                await self._flush()
            else:
                self._ready.clear()

    async def _watch(self, client: Client, namespaces: list[str]) -> None:
        """Follow asyncua's resumes, and check that the subscription answers (see the module docstring)."""
        ticked = time.monotonic()
        reachable_since: float | None = None  # while asyncua resumes: since when the server accepts TCP again
        async with client.subscribe_state() as states:
            while True:
                if client.state is UaClientState.CONNECTED:
                    reachable_since = None
                else:
                    reachable_since = await self._check_resume(reachable_since)
                with contextlib.suppress(asyncio.TimeoutError):
                    state = await states.next_change(KEEPALIVE_S / 2)
                    if state is UaClientState.RECONNECTING:
                        self.health.connected = False
                        self._quiet_since = math.inf  # silence counts again once the resume is seen (below)
                    elif state is UaClientState.CONNECTED and not self.health.connected:
                        if await client.get_namespace_array() != namespaces:
                            raise NamespacesMoved("the server's namespace array changed; resolving node ids again")
                        self._quiet_since = time.monotonic()  # asyncua restores the subscription from now on
                        if self.config.mode == "poll":  # a Read that fails raises: nothing to prove here
                            self.established()
                # after the event loop was blocked, answers may wait unread in the socket: look next time
                now = time.monotonic()
                stalled_loop = now - ticked > KEEPALIVE_S
                ticked = now
                if self._subscription is not None and client.state is UaClientState.CONNECTED and not stalled_loop:
                    self._check_publish_responses()

    async def _check_resume(self, reachable_since: float | None) -> float | None:
        """While asyncua resumes: raise ResumeStuck once the server has accepted TCP connections for longer
        than asyncua's longest wait between attempts and an attempt takes, without asyncua getting back to
        CONNECTED (an attempt that hit the server mid-start-up could hang there for good, and no data came).
        Returns since when the server is reachable, None if it is not."""
        host, port = self.probe_address()
        try:
            await probe((host, port))
        except (OSError, asyncio.TimeoutError):
            return None
        now = time.monotonic()
        if reachable_since is None:
            return now
        stuck = now - reachable_since
        if stuck > self.config.reconnect_max_delay_s + RESUME_ATTEMPT_S:
            raise ResumeStuck(
                f"asyncua has not resumed the session {stuck:.1f}s after {host}:{port} accepted connections "
                "again; opening a new session"
            )
        return reachable_since

    def _answered(self) -> float:
        """When a Publish was last answered (0.0: not since the subscription was made or the session resumed).
        An answer proves the subscription alive: after a resume, that is when the source counts as connected."""
        answered = self._clock.answered_at
        if answered is None or answered < self._quiet_since:
            return 0.0
        if not self.health.connected:
            self.established()
        return answered

    def _check_publish_responses(self) -> None:
        """Raise SubscriptionSilent once no Publish response came for `_silent_after_s`."""
        silent = time.monotonic() - max(self._quiet_since, self._answered())
        if silent < self._silent_after_s:
            return
        count = int(self.health.details.get("silent_subscriptions", "0")) + 1
        self.health.details["silent_subscriptions"] = str(count)
        why = "after asyncua resumed the session" if not self.health.connected else "while connected"
        failure = f", the last Publish failed with {self._clock.last_failure}" if self._clock.last_failure else ""
        # Source.run logs it at WARNING (never deduplicated: the count differs) and opens a new session
        raise SubscriptionSilent(
            f"no Publish response (data or keep-alive) for {silent:.1f}s {why} (keep-alive asked every "
            f"{self._silent_after_s / SILENT_KEEPALIVES:.1f}s{failure}): the subscription is dead; subscribing "
            f"again on a new session ({plural(count, 'time')} so far)"
        )

    # --- GUI helpers ------------------------------------------------------------------------------------
    async def test_connection(self) -> str:
        """Connect, resolve the configured nodes and read them once."""
        try:
            client, namespaces = await self._connect()
        except _CONNECT_ERRORS as exc:
            raise ConnectionError(f"cannot connect to {self.config.endpoint}: {type(exc).__name__}: {exc}") from exc
        try:
            tags = await build_tags(client, self.config, namespaces)
            values = await client.read_attributes([client.get_node(t.node_id) for t in tags]) if tags else []
        finally:
            await client.disconnect()
        good = sum(1 for dv in values if is_good(dv))
        policy = f"{self.config.security_policy}/{self.config.security_mode}"
        text = (
            f"connected to {self.config.endpoint} ({policy}): {plural(len(tags), 'node')}, {good} read with good status"
        )
        bad = [t.tag_id for t, dv in zip(tags, values, strict=True) if not is_good(dv)]
        if bad:
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            return PartialSuccess(f"{text}; no good value from {', '.join(bad[:5])}{more}")
        return text

    async def browse(self, root: str = "i=85", depth: int = 1, filter: str = "*") -> list[dict[str, str]]:
        """One connection, browse below `root`; for the GUI's node picker (ids in stable nsu= form)."""
        client, namespaces = await self._connect()
        try:
            entries = await discover(
                client, BrowseConfig(root=root, depth=depth, filter=filter), namespaces, variables_only=False
            )
        finally:
            await client.disconnect()
        return [{"id": e.tag_id, "path": e.path, "node_class": e.node_class} for e in entries]
