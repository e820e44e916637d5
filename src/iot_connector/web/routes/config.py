"""The ZeroBus and Settings tabs: schemas, the masked config, the sink (save and test), agent settings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import ValidationError

from iot_connector.config import AgentConfig, ConfigError, json_schemas
from iot_connector.config.models import ZerobusSinkSettings
from iot_connector.web.checks import check_zerobus
from iot_connector.web.deps import Reader, State, Writer, apply, audit, problems
from iot_connector.web.masking import MASK, masked, unmask

router = APIRouter(prefix="/api")


@router.get("/schemas")
async def schemas(_s: Reader) -> dict[str, Any]:
    return json_schemas()


@router.get("/config")
async def config(state: State, _s: Reader) -> dict[str, Any]:
    return {"config": masked(state.runtime.current()), "error": state.runtime.config_error, "mask": MASK}


@router.put("/sink")
async def put_sink(sink: dict[str, Any], request: Request, state: State, s: Writer) -> dict[str, Any]:
    return await apply(state, lambda c: c | {"sink": unmask(sink, c.get("sink"), "sink")}, s, request, "sink.update")


@router.post("/sink/test")
async def sink_test(sink: dict[str, Any], request: Request, state: State, s: Writer) -> dict[str, Any]:
    try:
        raw = unmask(sink, state.runtime.current().get("sink"), "sink")
        settings = ZerobusSinkSettings.model_validate(raw)
    except ConfigError as exc:
        raise HTTPException(400, problems(exc)) from None
    except ValidationError as exc:
        found = [f"sink.{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)]
        raise HTTPException(400, problems(ConfigError(found))) from None
    found = await check_zerobus(settings)
    audit(state, s.user, request, "sink.test", {"workspace_url": settings.workspace_url, "problems": found})
    if found:
        raise HTTPException(400, found)
    return {"ok": True, "message": "workspace and ZeroBus endpoint reachable, OAuth credentials accepted"}


@router.put("/settings")
async def put_settings(body: dict[str, Any], request: Request, state: State, s: Writer) -> dict[str, Any]:
    allowed = set(AgentConfig.model_fields) - {"sink", "sources"}  # those have their own tabs
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise HTTPException(400, [f"{k}: not a setting of this tab" for k in unknown])

    def mutate(current: dict[str, Any]) -> dict[str, Any]:
        return current | {k: unmask(v, current.get(k), k) for k, v in body.items()}

    return await apply(state, mutate, s, request, "settings.update")
