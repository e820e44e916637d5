"""Certificate and key uploads into the certs directory (validated, confined, keys 0600)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel

from iot_connector.web.checks import CheckError, list_certs, store_cert
from iot_connector.web.deps import Reader, State, Writer, audit

router = APIRouter(prefix="/api/certs")


class CertUpload(BaseModel):
    name: str
    kind: str
    pem: str


@router.get("")
async def certs(state: State, _s: Reader) -> dict[str, Any]:
    return {"files": list_certs(state.runtime.config_dir)}


@router.post("")
async def upload(body: CertUpload, request: Request, state: State, s: Writer) -> dict[str, Any]:
    try:
        path, described = store_cert(state.runtime.config_dir, body.name, body.kind, body.pem)
    except CheckError as exc:
        raise HTTPException(400, [str(exc)]) from None
    audit(state, s.user, request, "cert.upload", {"file": path.name, "kind": body.kind})
    return {"ok": True, "path": str(path), "message": f"stored {path.name}: {described}"}
