"""The Sources tab: save, remove, test a connection, browse an OPC-UA server. Tests and browses connect to
what the operator typed, so they are audited; a stored secret is only ever sent where it was stored for."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel

from iot_connector.config import ConfigError, parse_config
from iot_connector.latest import MAX_TAGS
from iot_connector.sources.base import PartialSuccess, Source
from iot_connector.web.deps import GuiState, Reader, State, Writer, apply, audit, problems
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


def _needs_nodes(raw: dict[str, Any]) -> bool:
    """An OPC-UA draft without nodes yet: browse and test read the server clock instead (every server has it),
    since browsing is how an operator finds the first nodes."""
    return raw.get("type") == "opcua" and not raw.get("nodes") and not raw.get("browse")


def _probe(state: GuiState, edit: SourceEdit) -> Source:
    try:
        raw = unmask(edit.source, _stored(state, edit.original), _where(edit))
        if _needs_nodes(raw):
            raw = raw | {"nodes": [CURRENT_TIME_NODE]}
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
    message = await _bounded(source.test_connection(), "connection test")
    if _needs_nodes(edit.source):
        message = PartialSuccess(f"{message} (no nodes chosen yet: read the server clock {CURRENT_TIME_NODE})")
    return {"ok": True, "warning": isinstance(message, PartialSuccess), "message": message}


@router.get("/{name}/tags")
async def source_tags(
    name: str, state: State, _s: Reader, limit: int = Query(500, ge=1, le=MAX_TAGS)
) -> dict[str, Any]:
    """The live tag view: each tag's latest value, quality, timestamps and updates/s (at most `limit`)."""
    if _stored(state, name) is None:
        raise HTTPException(404, f"no source named {name[:100]!r}")
    agent = state.runtime.agent
    table = agent.latest.get(name) if agent is not None else None
    if table is None:  # configured but not running (disabled, cannot be created, agent stopped)
        return {"source": name, "running": False, "tags": [], "total": 0, "not_shown_updates": 0}
    return {"source": name, "running": True} | table.snapshot(limit)


@router.post("/browse")
async def source_browse(
    edit: SourceEdit, request: Request, state: State, s: Writer, root: str = "i=85"
) -> dict[str, Any]:
    source = _probe(state, edit)
    if not hasattr(source, "browse"):
        raise HTTPException(400, ["browse is only for OPC-UA sources"])
    audit(state, s.user, request, "source.browse", _target(source) | {"root": root})
    return {"nodes": await _bounded(source.browse(root=root, depth=1), "browse")}
