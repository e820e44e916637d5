"""Whether an OPC UA subscription still answers, whatever asyncua's connection state says.

asyncua 2.1 can report CONNECTED after its own reconnect while no data can come: its subscription restore
failed (it logs and goes on), or the server no longer answers the session's Publish requests. The source asks
for a keep-alive about every KEEPALIVE_S and, through asyncua's request observer, notes every Publish
response (data or keep-alive); SILENT_KEEPALIVES keep-alive periods without one mean the subscription is dead.
"""

from __future__ import annotations

import math
import time

from asyncua.observer import Observer

KEEPALIVE_S = 0.5  # asked of the server: a Publish response at least this often, a keep-alive if nothing changed
SILENT_KEEPALIVES = 3  # keep-alive periods without any Publish response after which the subscription is dead


RESUME_ATTEMPT_S = 1.0  # more than one resume attempt of asyncua takes against a server that answers


class ResumeStuck(ConnectionError):
    """asyncua still resuming well after the server accepts connections again: a new session takes over."""


class SubscriptionSilent(ConnectionError):
    """No Publish response (data or keep-alive) for several keep-alive periods: the subscription is dead,
    whatever asyncua's state says; a new session subscribes again."""


def keepalive_count(publishing_interval_ms: float) -> int:
    """Publishing intervals between keep-alives so that one comes about every KEEPALIVE_S."""
    return max(1, math.ceil(KEEPALIVE_S * 1000 / publishing_interval_ms))


class PublishClock(Observer):
    """asyncua's request observer (`client.uaclient.observer`): when a Publish request was last answered, and
    how the last one failed. asyncua's own `Subscription.last_publish_at` is no proof: its restore and
    re-create reset it without any answer from the server."""

    def __init__(self) -> None:
        self.answered_at: float | None = None  # time.monotonic()
        self.last_failure: str | None = None

    def on_request(self, request_type: str, duration: float, error: BaseException | None) -> None:
        if request_type != "PublishRequest":
            return
        if error is None:
            self.answered_at = time.monotonic()
        else:
            self.last_failure = f"{type(error).__name__}: {error}"
