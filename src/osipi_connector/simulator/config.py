"""Every knob of the simulator in one place, with the real server's defaults where one exists."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from osipi_connector.piwebapi.pitime import UTC


@dataclass
class FaultConfig:
    """Injected faults. Each rate is a probability per request, drawn from a seeded generator."""

    error_rate: float = 0.0  # start a burst of 5xx answers
    error_burst: int = 3  # requests per burst
    error_statuses: tuple[int, ...] = (500, 502, 503)
    latency_ms: float = 0.0  # added to every request
    latency_jitter_ms: float = 0.0
    drop_rate: float = 0.0  # close the connection without an answer
    truncate_rate: float = 0.0  # send a body cut in the middle
    seed: int = 0


@dataclass
class SimConfig:
    seed: int = 42
    tags: int = 1000
    now: datetime | None = None  # fixed clock; None means the wall clock
    server_name: str = "PISIM"
    af_server_name: str = "PISIM-AF"
    af_database_name: str = "Plant"
    # PI Web API configuration items (same names and defaults as the real server)
    max_returned_items_per_call: int = 150_000
    rate_limit_max_requests: int = 1000  # per client IP per window; 0 disables
    rate_limit_duration_s: float = 1.0
    batch_enabled: bool = True  # False: POST /batch answers 405, as a server with the batch controller disabled
    # Late and edited data (re-read windows)
    late_share: float = 0.1  # share of tags whose values arrive after a delay
    late_delay_s: tuple[float, float] = (60.0, 1800.0)
    edit_share: float = 0.01  # share of events whose value is edited later (flagged Substituted)
    edit_delay_s: float = 3600.0
    # Tag history starts somewhere in this many days before `now` (a "Pt Created" event marks it)
    history_days: int = 400
    # AF and event frames
    attributes_per_equipment: int = 4
    event_frames_per_day: int = 48
    # Auth: "none", "basic", "bearer" or "kerberos" (SPNEGO; the service key comes from KRB5_KTNAME)
    auth: str = "none"
    users: dict[str, str] = field(default_factory=lambda: {"piuser": "pipassword"})
    clients: dict[str, str] = field(default_factory=lambda: {"osipi-connector": "client-secret"})
    token_ttl_s: float = 3600.0
    faults: FaultConfig = field(default_factory=FaultConfig)
    # True: every request is answered by a single-sign-on login page (200, text/html), as when a portal or
    # proxy sits in front of PI Web API or pi_web_api.url points at the wrong site
    login_page: bool = False

    def __post_init__(self) -> None:
        if self.tags < 1:
            raise ValueError("tags must be at least 1")
        if self.auth not in ("none", "basic", "bearer", "kerberos"):
            raise ValueError(f"auth must be none, basic, bearer or kerberos, not {self.auth!r}")
        if self.now is not None and self.now.tzinfo is None:
            self.now = self.now.replace(tzinfo=UTC)
