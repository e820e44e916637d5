"""A stand-in for the few Databricks workspace REST endpoints `databricks bundle validate` / `bundle summary`
call, so the real CLI runs offline against 127.0.0.1.

It answers exactly what CLI v1.12.1 asks (read from its source and its `--debug` log): host metadata, the
current user, the service-principal lookup of `lookup: service_principal`, workspace folder status / mkdirs
and folder permissions. It models a fresh workspace: the deploying identity's home folder exists, a folder
created through `mkdirs` is managed by its creator and inherits its parent's ACL, workspace admins manage
everything. Anything else gets the workspace's 404 for an unknown endpoint, and is recorded in `unanswered`
so a test sees when a newer CLI starts asking for more.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, urlsplit

WORKSPACE_ID = "1234567890123456"
Reply = tuple[int, dict[str, Any]]  # HTTP status, JSON body


@dataclass(frozen=True)
class Identity:
    """Who the CLI is authenticated as: a user (`user_name` is an e-mail) or a service principal
    (`user_name` is its application ID, as SCIM `/Me` reports it)."""

    user_name: str
    display_name: str
    service_principal: bool = False

    def acl_entry(self, level: str) -> dict[str, Any]:
        key = "service_principal_name" if self.service_principal else "user_name"
        return {key: self.user_name, "level": level}


@dataclass
class _Folder:
    object_id: int
    acl: list[dict[str, Any]]  # direct grants: {"user_name"|"group_name"|"service_principal_name", "level"}


@dataclass
class WorkspaceStub:
    """`with WorkspaceStub(me) as stub:` serves on `stub.host` until the block ends."""

    me: Identity
    service_principals: dict[str, str] = field(default_factory=dict)  # display name -> application ID
    unanswered: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._ids = itertools.count(1001)
        self._lock = threading.Lock()
        admins = {"group_name": "admins", "level": "CAN_MANAGE"}
        home = "/Users/" + self.me.user_name
        self._folders: dict[str, _Folder] = {"/": _Folder(next(self._ids), [admins])}
        for path in ("/Users", "/Shared", home):
            self._folders[path] = _Folder(next(self._ids), [])
        self._folders[home].acl.append(self.me.acl_entry("CAN_MANAGE"))
        self._server: ThreadingHTTPServer | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------
    def __enter__(self) -> WorkspaceStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub._handle(self)

            do_POST = do_GET

            def log_message(self, format: str, *args: Any) -> None:  # quiet: the tests read the CLI, not this
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, name="workspace-stub", daemon=True).start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def host(self) -> str:
        assert self._server is not None, "use the stub as a context manager"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # -- dispatch ----------------------------------------------------------------------------------------
    def _handle(self, req: BaseHTTPRequestHandler) -> None:
        url = urlsplit(req.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        length = int(req.headers.get("Content-Length") or 0)
        body = json.loads(req.rfile.read(length) or b"{}") if length else {}
        route = f"{req.command} {url.path}"
        with self._lock:
            self.requests.append(route)
            status, answer = self._answer(route, query, body, req.headers.get("Authorization"))
            if status == 404 and answer.get("error_code") == "ENDPOINT_NOT_FOUND":
                self.unanswered.append(route)
        data = json.dumps(answer).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)

    def _answer(self, route: str, query: dict[str, str], body: dict[str, Any], auth: str | None) -> Reply:
        if route == "GET /.well-known/databricks-config":
            return 200, {
                "oidc_endpoint": self.host + "/oidc",
                "workspace_id": WORKSPACE_ID,
                "cloud": "AWS",
                "host_type": "WORKSPACE_HOST",
            }
        if not (auth or "").startswith("Bearer "):
            return 401, {"error_code": "UNAUTHENTICATED", "message": "Credential was not sent"}
        if route == "GET /api/2.0/preview/scim/v2/Me":
            return 200, self._me()
        if route == "GET /api/2.0/preview/scim/v2/ServicePrincipals":
            return 200, self._service_principals(query)
        if route == "GET /api/2.0/workspace/get-status":
            return self._get_status(query["path"])
        if route == "POST /api/2.0/workspace/mkdirs":
            return self._mkdirs(body["path"])
        match = re.fullmatch(r"GET /api/2\.0/permissions/directories/(\d+)", route)
        if match:
            return self._directory_permissions(int(match[1]))
        return 404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"No API found for '{route}'"}

    # -- identities --------------------------------------------------------------------------------------
    def _me(self) -> dict[str, Any]:
        me = {
            "id": "7001",
            "userName": self.me.user_name,
            "displayName": self.me.display_name,
            "active": True,
            "groups": [{"display": "users", "value": "5001"}],
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        }
        if not self.me.service_principal:
            me["emails"] = [{"type": "work", "value": self.me.user_name, "primary": True}]
        return me

    def _service_principals(self, query: dict[str, str]) -> dict[str, Any]:
        match = re.fullmatch(r"""displayName eq ['"](.*)['"]""", query.get("filter", ""))
        found = [
            {"id": str(7100 + n), "applicationId": app_id, "displayName": name, "active": True}
            for n, (name, app_id) in enumerate(self.service_principals.items())
            if match is None or name == match[1]
        ]
        start = int(query.get("startIndex", 1))
        page = found[start - 1 :]
        return {"totalResults": len(found), "startIndex": start, "itemsPerPage": len(page), "Resources": page}

    # -- workspace folders -------------------------------------------------------------------------------
    @staticmethod
    def _key(path: str) -> str:
        """/Workspace/Users/x and /Users/x are the same folder."""
        path = "/" + path.strip("/")
        return path.removeprefix("/Workspace") or "/"

    def _get_status(self, path: str) -> Reply:
        folder = self._folders.get(self._key(path))
        if folder is None:
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Path ({path}) doesn't exist."}
        return 200, {"object_type": "DIRECTORY", "path": path, "object_id": folder.object_id}

    def _mkdirs(self, path: str) -> Reply:
        parts = self._key(path).strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            key = "/" + "/".join(parts[:depth])
            if key not in self._folders:
                self._folders[key] = _Folder(next(self._ids), [self.me.acl_entry("CAN_MANAGE")])
        return 200, {}

    def _directory_permissions(self, object_id: int) -> Reply:
        key = next((k for k, f in self._folders.items() if f.object_id == object_id), None)
        if key is None:
            return 404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"directories/{object_id} not found"}
        # Effective ACL: the folder's own grants plus those inherited from every ancestor.
        entries: dict[tuple[str, str], list[dict[str, Any]]] = {}
        chain = [key] + [a for a in self._folders if a != key and (a == "/" or key.startswith(a + "/"))]
        for path in chain:
            for grant in self._folders[path].acl:
                principal = next((k, v) for k, v in grant.items() if k != "level")
                level = {"permission_level": grant["level"], "inherited": path != key}
                if path != key:
                    level["inherited_from_object"] = [f"directories/{self._folders[path].object_id}"]
                entries.setdefault(principal, []).append(level)
        return 200, {
            "object_id": f"/directories/{object_id}",
            "object_type": "directory",
            "access_control_list": [{k: v, "all_permissions": levels} for (k, v), levels in entries.items()],
        }
