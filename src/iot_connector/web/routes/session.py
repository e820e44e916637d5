"""Login, logout, the current session and password changes. Failed guesses at a password, at the login or
at the current password of a password change, share one throttle (`LoginLimiter`) and are audited."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel

from iot_connector.web.auth import DEVICE_COOKIE, PasswordPolicyError
from iot_connector.web.deps import COOKIE, GuiState, Reader, State, Writer, audit, client_of

router = APIRouter(prefix="/api")


class Login(BaseModel):
    username: str
    password: str


class PasswordChange(BaseModel):
    current: str
    new: str


def _throttled(state: GuiState, request: Request, who: str, key: tuple[str, ...]) -> None:
    """429 while `key` waits out its backoff; the first refusal of each wait is audited."""
    wait, first = state.limiter.retry_after(key)
    if wait:
        if first:
            audit(state, who, request, "login.throttled", {"retry_after_s": wait}, logging.WARNING)
        raise HTTPException(429, f"too many failed attempts; try again in {wait} s", {"Retry-After": str(wait)})


@router.post("/login")
async def login(body: Login, request: Request, response: Response, state: State) -> dict[str, str]:
    who = body.username[:64]
    device = state.limiter.device_of(request.cookies.get(DEVICE_COOKIE), who)
    key = state.limiter.key(who, client_of(request), device)
    _throttled(state, request, who, key)
    state.limiter.begin(key)  # recorded as a failure before the slow check: concurrent guesses cannot race it
    if not await asyncio.to_thread(state.users.verify, who, body.password):
        audit(state, who, request, "login.failure", {"failures": state.limiter.failures(key)}, logging.WARNING)
        raise HTTPException(401, "wrong user name or password")
    state.limiter.succeeded(key)
    token, session = state.sessions.create(who)
    cookie = {"httponly": True, "samesite": "strict", "secure": state.secure_cookies, "path": "/"}
    response.set_cookie(COOKIE, token, **cookie)  # type: ignore[arg-type]
    response.set_cookie(DEVICE_COOKIE, state.limiter.device_token(who), max_age=180 * 86400, **cookie)  # type: ignore[arg-type]
    audit(state, who, request, "login.success", {})
    return {"user": session.user, "csrf": session.csrf}


@router.get("/session")
async def current_session(session: Reader) -> dict[str, str]:
    return {"user": session.user, "csrf": session.csrf}


@router.post("/logout")
async def logout(request: Request, response: Response, state: State, _s: Writer) -> dict[str, bool]:
    state.sessions.drop(request.cookies.get(COOKIE))
    response.delete_cookie(COOKIE, path="/")
    return {"ok": True}


@router.post("/password")
async def change_password(body: PasswordChange, request: Request, state: State, s: Writer) -> dict[str, bool]:
    device = state.limiter.device_of(request.cookies.get(DEVICE_COOKIE), s.user)
    key = state.limiter.key(s.user, client_of(request), device)
    _throttled(state, request, s.user, key)
    state.limiter.begin(key)
    if not await asyncio.to_thread(state.users.verify, s.user, body.current):
        audit(
            state, s.user, request, "user.password.failure", {"failures": state.limiter.failures(key)}, logging.WARNING
        )
        raise HTTPException(400, "the current password is wrong")
    state.limiter.succeeded(key)
    try:
        await asyncio.to_thread(state.users.set_password, s.user, body.new)
    except PasswordPolicyError as exc:
        raise HTTPException(400, str(exc)) from None
    ended = state.sessions.drop_user(s.user, keep=request.cookies.get(COOKIE))
    audit(state, s.user, request, "user.password", {"user": s.user, "other_sessions_ended": ended})
    return {"ok": True}
