"""Certificate and key uploads into the certs directory (validated, confined, keys 0600), their list (for the
file pickers of the source forms), download of certificates (never of a private key) and delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

from iot_connector.web.checks import CheckError, cert_file, certs_dir, list_certs, store_cert
from iot_connector.web.deps import Reader, State, Writer, audit

router = APIRouter(prefix="/api/certs")


class CertUpload(BaseModel):
    name: str
    kind: str
    pem: str


@router.get("")
async def certs(state: State, _s: Reader) -> dict[str, Any]:
    config_dir = state.runtime.config_dir
    return {"files": list_certs(config_dir), "dir": str(certs_dir(config_dir).resolve())}


@router.post("")
async def upload(body: CertUpload, request: Request, state: State, s: Writer) -> dict[str, Any]:
    try:
        path, described = store_cert(state.runtime.config_dir, body.name, body.kind, body.pem)
    except CheckError as exc:
        raise HTTPException(400, [str(exc)]) from None
    audit(state, s.user, request, "cert.upload", {"file": path.name, "kind": body.kind})
    return {"ok": True, "path": str(path), "message": f"stored {path.name}: {described}"}


@router.get("/{name}")
async def download(name: str, state: State, _s: Reader) -> PlainTextResponse:
    try:
        text = cert_file(state.runtime.config_dir, name).read_text()
    except CheckError as exc:
        raise HTTPException(404, [str(exc)]) from None
    if "PRIVATE KEY-----" in text:
        raise HTTPException(403, [f"{name} holds a private key: keys are never sent back"])
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    return PlainTextResponse(text, media_type="application/x-pem-file", headers=disposition)


@router.delete("/{name}")
async def delete(name: str, request: Request, state: State, s: Writer) -> dict[str, Any]:
    try:
        cert_file(state.runtime.config_dir, name).unlink()
    except CheckError as exc:
        raise HTTPException(404, [str(exc)]) from None
    audit(state, s.user, request, "cert.delete", {"file": name})
    return {"ok": True}
