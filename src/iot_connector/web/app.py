"""The GUI's HTTP API and static pages (FastAPI). Every /api route but login needs a session; every
state-changing one also needs the session's CSRF token in the X-CSRF-Token header (see `web/deps.py`).
Routes live in `web/routes/`; request bodies are capped before anything reads them (`web/limits.py`)."""

from __future__ import annotations

from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from iot_connector.web.auth import LoginLimiter, Sessions, Users
from iot_connector.web.deps import GuiState
from iot_connector.web.limits import BodyLimit, SecurityHeaders
from iot_connector.web.routes import ROUTERS
from iot_connector.web.routes.monitor import STATIC
from iot_connector.web.runtime import LogBuffer, Runtime


async def _problems(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    detail = exc.detail if isinstance(exc.detail, list) else [str(exc.detail)]
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)


def create_app(
    runtime: Runtime, logs: LogBuffer, *, secure_cookies: bool = False, limiter: LoginLimiter | None = None
) -> FastAPI:
    app = FastAPI(title="iot-connector", docs_url=None, redoc_url=None, openapi_url=None)
    users = Users(runtime.config_dir)
    users.ensure_admin()
    state = GuiState(runtime, logs, users, Sessions(), limiter or LoginLimiter(), secure_cookies)
    app.state.gui = state
    app.add_exception_handler(HTTPException, _problems)
    for router in ROUTERS:
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    app.add_middleware(BodyLimit, sessions=state.sessions)
    app.add_middleware(SecurityHeaders)  # outermost: a 413 from BodyLimit carries the headers too
    return app
