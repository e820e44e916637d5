"""Dashboard, Logs and Audit tabs, the health probe and the page itself."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse

from iot_connector.web.deps import Reader, State
from iot_connector.web.runtime import AUDIT_FILE

router = APIRouter()
STATIC = resources.files("iot_connector.web") / "static"


@router.get("/api/status")
async def status(state: State, _s: Reader) -> dict[str, Any]:
    return state.runtime.status()


@router.get("/api/logs")
async def log_lines(state: State, _s: Reader, after: int = 0, level: str = "DEBUG", q: str = "") -> dict[str, Any]:
    return {"lines": state.logs.query(after, level, q)[-1000:], "seq": state.logs.seq}


@router.get("/api/logs/download")
async def log_download(state: State, _s: Reader, level: str = "DEBUG", q: str = "") -> PlainTextResponse:
    text = "".join(json.dumps(line) + "\n" for line in state.logs.query(0, level, q))
    disposition = {"Content-Disposition": 'attachment; filename="iot-connector.log"'}
    return PlainTextResponse(text, headers=disposition)


@router.get("/api/audit")
async def audit_log(state: State, _s: Reader) -> dict[str, Any]:
    path = Path(state.runtime.config_dir) / AUDIT_FILE
    lines = path.read_text().splitlines()[-200:] if path.exists() else []
    return {"entries": [json.loads(line) for line in lines]}


@router.get("/healthz")
async def healthz(state: State) -> JSONResponse:
    """For container healthchecks and probes, without login: 200 while the agent runs, 503 otherwise (a
    config the operator still has to fix in the GUI, or an agent that stopped), with the reason."""
    current = state.runtime.status()
    body = {"gui": "ok", "agent": "running" if current["running"] else "stopped", "problem": current["config_error"]}
    return JSONResponse(body, status_code=200 if current["running"] else 503)


@router.get("/")
async def index() -> FileResponse:
    return FileResponse(str(STATIC / "index.html"))
