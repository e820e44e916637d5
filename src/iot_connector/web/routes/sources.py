"""The Sources tab: save, remove, test a connection, browse an OPC-UA server. Tests and browses connect to
what the operator typed, so they are audited; a stored secret is only ever sent where it was stored for."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

from iot_connector.config import ConfigError, parse_config
from iot_connector.sources.base import Source
from iot_connector.web.deps import GuiState, State, Writer, apply, audit, problems
from iot_connector.web.masking import unmask

router = APIRouter(prefix="/api/sources")
TEST_TIMEOUT_S = 20.0
CURRENT_TIME_NODE = "i=2258"  # Server_ServerStatus_CurrentTime: exists on every OPC-UA server


class SourceEdit(BaseModel):
    original: str | None = None  # the name being edited (None = a new source)
    source: dict[str, Any]


def _where(edit: SourceEdit) -> str:
    return f"sources.{edit.source.get('name') or edit.original or 'new'}"


def _stored(state: GuiState, name: str | None) -> dict[str, Any] | None:
    return next((x for x in state.runtime.current().get("sources", []) if x.get("name") == name), None)


@router.post("")
async def save_source(edit: SourceEdit, request: Request, state: State, s: Writer) -> dict[str, Any]:
    def mutate(current: dict[str, Any]) -> dict[str, Any]:
        sources = list(current.get("sources", []))
        old = next((x for x in sources if x.get("name") == edit.original), None)
        if edit.original is not None and old is None:
            raise HTTPException(404, f"no source named {edit.original!r}")
        new = unmask(edit.source, old, _where(edit))
        return current | {"sources": [new if x is old else x for x in sources] if old else [*sources, new]}

    action = "source.update" if edit.original is not None else "source.add"
    return await apply(state, mutate, s, request, f"{action} {edit.source.get('name')}")


@router.delete("/{name}")
async def delete_source(name: str, request: Request, state: State, s: Writer) -> dict[str, Any]:
    def mutate(current: dict[str, Any]) -> dict[str, Any]:
        sources = [x for x in current.get("sources", []) if x.get("name") != name]
        if len(sources) == len(current.get("sources", [])):
            raise HTTPException(404, f"no source named {name!r}")
        return current | {"sources": sources}

    return await apply(state, mutate, s, request, f"source.remove {name}")


def _probe(state: GuiState, edit: SourceEdit, for_browse: bool = False) -> Source:
    try:
        raw = unmask(edit.source, _stored(state, edit.original), _where(edit))
        if for_browse and not raw.get("nodes") and not raw.get("browse"):
            raw = raw | {"nodes": [CURRENT_TIME_NODE]}  # browsing is how an operator finds the first nodes
        config = parse_config({"sources": [raw]}).sources[0]
    except ConfigError as exc:
        raise HTTPException(400, problems(exc)) from None
    return state.runtime.make_source(config)


async def _bounded(awaitable: Awaitable[Any], what: str) -> Any:
    try:
        return await asyncio.wait_for(awaitable, TEST_TIMEOUT_S)
    except asyncio.TimeoutError:
        raise HTTPException(400, [f"{what}: no answer within {TEST_TIMEOUT_S:.0f} s"]) from None
    except NotImplementedError:
        raise HTTPException(400, [f"{what}: this source type has no connection test"]) from None
    except Exception as exc:
        raise HTTPException(400, [f"{what} failed: {type(exc).__name__}: {exc}"]) from None


def _target(source: Source) -> dict[str, Any]:
    cfg = source.config
    return {"source": cfg.name, "type": cfg.type, "to": getattr(cfg, "endpoint", None) or getattr(cfg, "url", None)}


@router.post("/test")
async def source_test(edit: SourceEdit, request: Request, state: State, s: Writer) -> dict[str, Any]:
    source = _probe(state, edit)
    audit(state, s.user, request, "source.test", _target(source))
    return {"ok": True, "message": await _bounded(source.test_connection(), "connection test")}


@router.post("/browse")
async def source_browse(
    edit: SourceEdit, request: Request, state: State, s: Writer, root: str = "i=85"
) -> dict[str, Any]:
    source = _probe(state, edit, for_browse=True)
    if not hasattr(source, "browse"):
        raise HTTPException(400, ["browse is only for OPC-UA sources"])
    audit(state, s.user, request, "source.browse", _target(source) | {"root": root})
    return {"nodes": await _bounded(source.browse(root=root, depth=1), "browse")}
