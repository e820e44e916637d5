"""Circuit breaker and exponential backoff around the sink.

Why: during an outage the agent must not hammer ZeroBus (or a locked Delta table) with a retry per batch;
the breaker opens after N consecutive failures, lets one trial batch through after a pause, and closes
again on the first success. Records wait in the spool meanwhile, so nothing is lost.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    def __init__(
        self, failure_threshold: int = 5, reset_timeout_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ):
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        return "half_open" if self._clock() - self._opened_at >= self.reset_timeout_s else "open"

    def wait_time(self) -> float:
        """Seconds until a call may be tried (0 when closed or half-open)."""
        if self._opened_at is None:
            return 0.0
        return max(0.0, self.reset_timeout_s - (self._clock() - self._opened_at))

    def record_success(self) -> None:
        self._failures = 0
        self._opened_at = None

    def record_failure(self) -> None:
        self._failures += 1
        if self.state == "half_open" or self._failures >= self.failure_threshold:
            self._opened_at = self._clock()


class Backoff:
    """Delay before retry n: initial * multiplier**n, capped, with +/- jitter (to spread reconnect storms)."""

    def __init__(self, initial_s: float = 0.5, max_s: float = 30.0, multiplier: float = 2.0, jitter: float = 0.2):
        self.initial_s, self.max_s, self.multiplier, self.jitter = initial_s, max_s, multiplier, jitter

    def delay(self, attempt: int) -> float:
        base = min(self.max_s, self.initial_s * self.multiplier ** min(attempt, 64))
        return max(0.0, base * (1 + random.uniform(-self.jitter, self.jitter)))
