"""What every route shares: the GUI's state, the login and CSRF dependencies, the audit trail, and how a
config edit is applied. Routers in `web/routes/` declare `Reader` (a logged-in session) or `Writer` (a
session plus its CSRF token) and never check either by hand."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from iot_connector.config import ConfigError
from iot_connector.logs import apply_log_levels, remember_secrets
from iot_connector.web.auth import COOKIE, LoginLimiter, Session, Sessions, Users
from iot_connector.web.runtime import LogBuffer, Runtime, write_audit

audit_log = logging.getLogger("iot_connector.web.audit")
_HINTS = {"String should match pattern '^https?://'": "must be a URL starting with https:// (or http://)"}
Mutate = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass
class GuiState:
    runtime: Runtime
    logs: LogBuffer
    users: Users
    sessions: Sessions
    limiter: LoginLimiter
    secure_cookies: bool = False


def gui(request: Request) -> GuiState:
    state: GuiState = request.app.state.gui
    return state


State = Annotated[GuiState, Depends(gui)]


def user(request: Request, state: State) -> Session:
    session = state.sessions.get(request.cookies.get(COOKIE))
    if session is None:
        raise HTTPException(401, "log in first")
    return session


def writer(request: Request, session: Annotated[Session, Depends(user)]) -> Session:
    if not Sessions.csrf_ok(session, request.headers.get("X-CSRF-Token")):
        raise HTTPException(403, "missing or wrong CSRF token; reload the page")
    return session


Reader = Annotated[Session, Depends(user)]
Writer = Annotated[Session, Depends(writer)]


def client_of(request: Request) -> str:
    return request.client.host if request.client else "?"


def audit(state: GuiState, who: str, request: Request, action: str, what: Any, level: int = logging.INFO) -> None:
    """One line in the audit log and one in the agent's log (the caller passes no secret in `what`)."""
    client = client_of(request)
    write_audit(state.runtime.config_dir, who, client, action, what)
    audit_log.log(level, "audit: %s by %r from %s: %s", action, who, client, what)


def problems(exc: ConfigError) -> list[str]:
    return [next((p.replace(k, v) for k, v in _HINTS.items() if k in p), p) for p in exc.problems]


async def apply(state: GuiState, mutate: Mutate, session: Session, request: Request, action: str) -> dict[str, Any]:
    """Validate, persist and apply one config edit; audit what changed. New log levels apply at once, before
    the agent restarts (so a library asked for at DEBUG shows its reconnect), and are put back if refused."""

    def leveled(current: dict[str, Any]) -> dict[str, Any]:
        new = mutate(current)
        with contextlib.suppress(ValueError, TypeError, AttributeError):  # validated just after; see finally
            apply_log_levels(new.get("log_level", "INFO"), new.get("log_levels") or {})
        return new

    try:
        diff = await state.runtime.update(leveled)
    except ConfigError as exc:
        raise HTTPException(400, problems(exc)) from None
    finally:
        config = state.runtime.config
        if config is not None:
            apply_log_levels(config.log_level, config.log_levels)
            remember_secrets(config)
    audit(state, session.user, request, action, diff)
    return {"ok": True, "changed": sorted(diff)}
