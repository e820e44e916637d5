"""Transport-level behaviour of a busy or flaky server: rate limiting and seeded fault injection."""

from __future__ import annotations

import collections
import math
import random
import threading
import time
from dataclasses import dataclass

from osipi_connector.simulator.config import FaultConfig


class RateLimiter:
    """PI's limiter: at most `max_requests` per client IP per `duration_s`, else 429 + Retry-After."""

    def __init__(self, max_requests: int, duration_s: float):
        self.max_requests = max_requests
        self.duration_s = duration_s
        self._hits: dict[str, collections.deque[float]] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> int | None:
        """None when the request may proceed, else the whole seconds to wait."""
        if self.max_requests <= 0:
            return None
        now = time.monotonic()
        with self._lock:
            hits = self._hits[client]
            while hits and hits[0] <= now - self.duration_s:
                hits.popleft()
            if len(hits) >= self.max_requests:
                return max(1, math.ceil(hits[0] + self.duration_s - now))
            hits.append(now)
            return None


@dataclass
class Fault:
    status: int | None = None  # answer with this 5xx
    drop: bool = False  # close the connection without an answer
    truncate: bool = False  # send only part of the body
    delay_s: float = 0.0


class FaultInjector:
    """Draws one `Fault` per request from a generator seeded by the config, so a run replays.

    The request right after a burst of 5xx is never the start of another burst: a burst ends with a
    recovery, so even `error_rate=1.0` lets a client that retries past `error_burst` get through.
    """

    def __init__(self, config: FaultConfig):
        self.config = config
        self._random = random.Random(config.seed)
        self._burst_left = 0
        self._recovering = False
        self._burst_status = 500
        self._lock = threading.Lock()

    def draw(self) -> Fault:
        c = self.config
        with self._lock:
            r = self._random
            fault = Fault()
            if c.latency_ms or c.latency_jitter_ms:
                fault.delay_s = max(0.0, c.latency_ms + r.uniform(-1, 1) * c.latency_jitter_ms) / 1000
            if self._burst_left == 0 and not self._recovering and c.error_rate and r.random() < c.error_rate:
                self._burst_left = max(1, c.error_burst)
                self._burst_status = r.choice(c.error_statuses)
            self._recovering = False
            if self._burst_left:
                self._burst_left -= 1
                self._recovering = self._burst_left == 0
                fault.status = self._burst_status
                return fault
            if c.drop_rate and r.random() < c.drop_rate:
                fault.drop = True
            elif c.truncate_rate and r.random() < c.truncate_rate:
                fault.truncate = True
            return fault
