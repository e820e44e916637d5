"""The GUI's HTTP API and static pages (FastAPI). Every /api route but login needs a session; every
state-changing one also needs the session's CSRF token in the X-CSRF-Token header."""

import asyncio
import json
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ValidationError

from iot_connector.config import AgentConfig, ConfigError, json_schemas, parse_config
from iot_connector.config.models import ZerobusSinkSettings
from iot_connector.sources.base import Source
from iot_connector.web.auth import LoginLimiter, Session, Sessions, Users
from iot_connector.web.checks import CheckError, check_zerobus, list_certs, store_cert
from iot_connector.web.runtime import AUDIT_FILE, MASK, LogBuffer, Runtime, masked, unmask, write_audit

COOKIE = "iotc_session"
TEST_TIMEOUT_S = 20.0
CURRENT_TIME_NODE = "i=2258"  # Server_ServerStatus_CurrentTime: exists on every OPC-UA server
_HINTS = {"String should match pattern '^https?://'": "must be a URL starting with https:// (or http://)"}


Mutate = Callable[[dict[str, Any]], dict[str, Any]]


class Login(BaseModel):
    username: str
    password: str


class PasswordChange(BaseModel):
    current: str
    new: str


class CertUpload(BaseModel):
    name: str
    kind: str
    pem: str


class SourceEdit(BaseModel):
    original: str | None = None  # the name being edited (None = a new source)
    source: dict[str, Any]


def _problems(exc: ConfigError) -> list[str]:
    return [next((p.replace(k, v) for k, v in _HINTS.items() if k in p), p) for p in exc.problems]


def create_app(
    runtime: Runtime, logs: LogBuffer, *, secure_cookies: bool = False, limiter: LoginLimiter | None = None
) -> FastAPI:
    app = FastAPI(title="iot-connector", docs_url=None, redoc_url=None, openapi_url=None)
    users, sessions, limiter = Users(runtime.config_dir), Sessions(), limiter or LoginLimiter()
    users.ensure_admin()
    static = resources.files("iot_connector.web") / "static"

    @app.middleware("http")
    async def headers(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        response.headers["Content-Security-Policy"] = "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    def user(request: Request) -> Session:
        session = sessions.get(request.cookies.get(COOKIE))
        if session is None:
            raise HTTPException(401, "log in first")
        return session

    def writer(request: Request, session: Annotated[Session, Depends(user)]) -> Session:
        if not Sessions.csrf_ok(session, request.headers.get("X-CSRF-Token")):
            raise HTTPException(403, "missing or wrong CSRF token; reload the page")
        return session

    Reader = Annotated[Session, Depends(user)]
    Writer = Annotated[Session, Depends(writer)]

    def audit(session: Session, request: Request, action: str, what: Any) -> None:
        write_audit(runtime.config_dir, session.user, request.client.host if request.client else None, action, what)

    async def apply(mutate: Mutate, session: Session, request: Request, action: str) -> dict[str, Any]:
        try:
            diff = await runtime.update(mutate)
        except ConfigError as exc:
            raise HTTPException(400, _problems(exc)) from None
        audit(session, request, action, diff)
        return {"ok": True, "changed": sorted(diff)}

    # --- session ---------------------------------------------------------------------------------------
    @app.post("/api/login")
    async def login(body: Login, request: Request, response: Response) -> dict[str, str]:
        client = request.client.host if request.client else "?"
        wait = limiter.retry_after(client)
        if wait:
            raise HTTPException(429, f"too many failed logins; try again in {wait} s", {"Retry-After": str(wait)})
        if not await asyncio.to_thread(users.verify, body.username, body.password):
            limiter.failed(client)
            raise HTTPException(401, "wrong user name or password")
        limiter.succeeded(client)
        token, session = sessions.create(body.username)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=secure_cookies, path="/")
        return {"user": session.user, "csrf": session.csrf}

    @app.get("/api/session")
    async def current_session(session: Reader) -> dict[str, str]:
        return {"user": session.user, "csrf": session.csrf}

    @app.post("/api/logout")
    async def logout(request: Request, response: Response, _s: Writer) -> dict[str, bool]:
        sessions.drop(request.cookies.get(COOKIE))
        response.delete_cookie(COOKIE, path="/")
        return {"ok": True}

    @app.post("/api/password")
    async def change_password(body: PasswordChange, request: Request, s: Writer) -> dict[str, bool]:
        if not await asyncio.to_thread(users.verify, s.user, body.current):
            raise HTTPException(400, "the current password is wrong")
        try:
            users.set_password(s.user, body.new)
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        audit(s, request, "user.password", {"user": s.user})
        return {"ok": True}

    # --- configuration ---------------------------------------------------------------------------------
    @app.get("/api/schemas")
    async def schemas(_s: Reader) -> dict[str, Any]:
        return json_schemas()

    @app.get("/api/config")
    async def config(_s: Reader) -> dict[str, Any]:
        return {"config": masked(runtime.current()), "error": runtime.config_error, "mask": MASK}

    @app.put("/api/sink")
    async def put_sink(sink: dict[str, Any], request: Request, s: Writer) -> dict[str, Any]:
        return await apply(lambda c: c | {"sink": unmask(sink, c.get("sink"))}, s, request, "sink.update")

    @app.post("/api/sink/test")
    async def sink_test(sink: dict[str, Any], _s: Writer) -> dict[str, Any]:
        raw = unmask(sink, runtime.current().get("sink"))
        try:
            settings = ZerobusSinkSettings.model_validate(raw)
        except ValidationError as exc:
            problems = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)]
            raise HTTPException(400, _problems(ConfigError(problems))) from None
        problems = await check_zerobus(settings)
        if problems:
            raise HTTPException(400, problems)
        return {"ok": True, "message": "workspace and ZeroBus endpoint reachable, OAuth credentials accepted"}

    @app.put("/api/settings")
    async def put_settings(body: dict[str, Any], request: Request, s: Writer) -> dict[str, Any]:
        allowed = set(AgentConfig.model_fields) - {"sink", "sources"}  # those have their own tabs
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise HTTPException(400, [f"{k}: not a setting of this tab" for k in unknown])
        return await apply(lambda c: c | body, s, request, "settings.update")

    @app.post("/api/sources")
    async def save_source(edit: SourceEdit, request: Request, s: Writer) -> dict[str, Any]:
        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            sources = list(current.get("sources", []))
            old = next((x for x in sources if x.get("name") == edit.original), None)
            if edit.original is not None and old is None:
                raise HTTPException(404, f"no source named {edit.original!r}")
            new = unmask(edit.source, old)
            return current | {"sources": [new if x is old else x for x in sources] if old else [*sources, new]}

        action = "source.update" if edit.original is not None else "source.add"
        return await apply(mutate, s, request, f"{action} {edit.source.get('name')}")

    @app.delete("/api/sources/{name}")
    async def delete_source(name: str, request: Request, s: Writer) -> dict[str, Any]:
        def mutate(current: dict[str, Any]) -> dict[str, Any]:
            sources = [x for x in current.get("sources", []) if x.get("name") != name]
            if len(sources) == len(current.get("sources", [])):
                raise HTTPException(404, f"no source named {name!r}")
            return current | {"sources": sources}

        return await apply(mutate, s, request, f"source.remove {name}")

    def _probe(edit: SourceEdit, for_browse: bool = False) -> Source:
        old = next((x for x in runtime.current().get("sources", []) if x.get("name") == edit.original), None)
        raw = unmask(edit.source, old)
        if for_browse and not raw.get("nodes") and not raw.get("browse"):
            raw = raw | {"nodes": [CURRENT_TIME_NODE]}  # browsing is how an operator finds the first nodes
        try:
            config = parse_config({"sources": [raw]}).sources[0]
        except ConfigError as exc:
            raise HTTPException(400, _problems(exc)) from None
        return runtime.make_source(config)

    async def _bounded(awaitable: Awaitable[Any], what: str) -> Any:
        try:
            return await asyncio.wait_for(awaitable, TEST_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise HTTPException(400, [f"{what}: no answer within {TEST_TIMEOUT_S:.0f} s"]) from None
        except NotImplementedError:
            raise HTTPException(400, [f"{what}: this source type has no connection test"]) from None
        except Exception as exc:
            raise HTTPException(400, [f"{what} failed: {type(exc).__name__}: {exc}"]) from None

    @app.post("/api/sources/test")
    async def source_test(edit: SourceEdit, _s: Writer) -> dict[str, Any]:
        source = _probe(edit)
        return {"ok": True, "message": await _bounded(source.test_connection(), "connection test")}

    @app.post("/api/sources/browse")
    async def source_browse(edit: SourceEdit, _s: Writer, root: str = "i=85") -> dict[str, Any]:
        source = _probe(edit, for_browse=True)
        if not hasattr(source, "browse"):
            raise HTTPException(400, ["browse is only for OPC-UA sources"])
        return {"nodes": await _bounded(source.browse(root=root, depth=1), "browse")}

    @app.get("/api/certs")
    async def certs(_s: Reader) -> dict[str, Any]:
        return {"files": list_certs(runtime.config_dir)}

    @app.post("/api/certs")
    async def upload(body: CertUpload, request: Request, s: Writer) -> dict[str, Any]:
        try:
            path, described = store_cert(runtime.config_dir, body.name, body.kind, body.pem)
        except CheckError as exc:
            raise HTTPException(400, [str(exc)]) from None
        audit(s, request, "cert.upload", {"file": path.name, "kind": body.kind})
        return {"ok": True, "path": str(path), "message": f"stored {path.name}: {described}"}

    # --- monitoring and logs ---------------------------------------------------------------------------
    @app.get("/api/status")
    async def status(_s: Reader) -> dict[str, Any]:
        return runtime.status()

    @app.get("/api/logs")
    async def log_lines(_s: Reader, after: int = 0, level: str = "DEBUG", q: str = "") -> dict[str, Any]:
        return {"lines": logs.query(after, level, q)[-1000:], "seq": logs.seq}

    @app.get("/api/logs/download")
    async def log_download(_s: Reader, level: str = "DEBUG", q: str = "") -> PlainTextResponse:
        text = "".join(json.dumps(line) + "\n" for line in logs.query(0, level, q))
        disposition = {"Content-Disposition": 'attachment; filename="iot-connector.log"'}
        return PlainTextResponse(text, headers=disposition)

    @app.get("/api/audit")
    async def audit_log(_s: Reader) -> dict[str, Any]:
        path = Path(runtime.config_dir) / AUDIT_FILE
        lines = path.read_text().splitlines()[-200:] if path.exists() else []
        return {"entries": [json.loads(line) for line in lines]}

    @app.exception_handler(HTTPException)
    async def problems(_request: Request, exc: HTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, list) else [str(exc.detail)]
        return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        """For container healthchecks and probes, without login: 200 while the agent runs, 503 otherwise (a
        config the operator still has to fix in the GUI, or an agent that stopped), with the reason."""
        state = runtime.status()
        body = {"gui": "ok", "agent": "running" if state["running"] else "stopped", "problem": state["config_error"]}
        return JSONResponse(body, status_code=200 if state["running"] else 503)

    @app.get("/")
    async def index() -> FileResponse:
        return FileResponse(str(static / "index.html"))

    app.mount("/static", StaticFiles(directory=str(static)), name="static")
    return app
