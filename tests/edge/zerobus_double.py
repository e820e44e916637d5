"""A local ZeroBus gRPC double the REAL `databricks-zerobus-ingest-sdk` talks to (plaintext or TLS).

Follows the recipe in shared/reference/zerobus.md: the wire protocol reconstructed from captured SDK traffic
(`zerobus_wire.proto`, compiled at import with grpc_tools), initial metadata sent first, cumulative acks,
proto rows decoded with the DescriptorProto the client sends in `create_stream`. It also serves the OAuth
token endpoint (`POST /oidc/v1/token`) so the client id/secret path is exercised. Fault knobs: `down`
(UNAVAILABLE for new and running streams), `reject_create` (a gRPC status for stream creation),
`withhold_acks`. Usable from tests and from `benchmarks/edge_pipeline.py`.
"""

from __future__ import annotations

import base64
import importlib
import json
import sys
import tempfile
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, json_format, message_factory

from tests.certs import TestCA

PROTO = Path(__file__).with_name("zerobus_wire.proto")
TOKEN = "fake-token"


def _load_wire_modules() -> tuple[Any, Any]:
    """Compile zerobus_wire.proto once per process into a temp dir and import the generated modules."""
    if "zerobus_wire_pb2_grpc" not in sys.modules:
        from grpc_tools import protoc

        out = Path(tempfile.mkdtemp(prefix="zerobus_wire_"))
        include = Path(importlib.import_module("grpc_tools").__file__).parent / "_proto"
        rc = protoc.main(
            [
                "protoc",
                f"-I{PROTO.parent}",
                f"-I{include}",
                f"--python_out={out}",
                f"--grpc_python_out={out}",
                str(PROTO),
            ]
        )
        if rc != 0:
            raise RuntimeError(f"protoc failed on {PROTO} ({rc})")
        sys.path.insert(0, str(out))
    return importlib.import_module("zerobus_wire_pb2"), importlib.import_module("zerobus_wire_pb2_grpc")


pb, pb_grpc = _load_wire_modules()


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for localhost/127.0.0.1: (ca.pem, server.pem, server.key)."""
    ca = TestCA(directory, "zerobus-double test CA")
    server = ca.issue("localhost", server=True)
    return ca.files.cert, server.cert, server.key


def _message_class(descriptor: descriptor_pb2.DescriptorProto) -> Any:
    file_proto = descriptor_pb2.FileDescriptorProto(name="client_record.proto", syntax="proto2")
    file_proto.message_type.add().CopyFrom(descriptor)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file_proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName(descriptor.name))


class _Servicer(pb_grpc.ZerobusServicer):
    def __init__(self, double: ZerobusDouble):
        self.double = double

    def EphemeralStream(self, request_iterator, context):
        d = self.double
        headers = dict(context.invocation_metadata())
        if headers.get("authorization") != f"Bearer {TOKEN}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad or missing bearer token")
        context.send_initial_metadata(())
        first = next(request_iterator)
        create = first.create_stream
        with d.lock:
            d.creates += 1
        if d.down:
            context.abort(grpc.StatusCode.UNAVAILABLE, "zerobus double is down")
        if d.reject_create is not None:
            context.abort(d.reject_create, f"table {create.table_name} rejected by the double")
        if headers.get("x-databricks-zerobus-table-name") != create.table_name:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "table-name header does not match create_stream")
        table = create.table_name
        with d.lock:
            d.descriptors[table] = create.descriptor_proto
            d.stream_seq += 1
            stream_id = f"double-stream-{d.stream_seq}"
        yield pb.EphemeralStreamResponse(create_stream_response=pb.CreateIngestStreamResponse(stream_id=stream_id))
        for request in request_iterator:
            if d.down:
                context.abort(grpc.StatusCode.UNAVAILABLE, "zerobus double went down")
            kind = request.WhichOneof("payload")
            if kind == "ingest_record":
                payloads = [request.ingest_record.proto_encoded_record]
                offset = request.ingest_record.offset_id
            elif kind == "ingest_record_batch":
                payloads = list(request.ingest_record_batch.proto_encoded_batch.records)
                offset = request.ingest_record_batch.offset_id
            else:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"unexpected {kind} after create_stream")
            with d.lock:
                d.payloads.setdefault(table, []).extend(payloads)
            if not d.withhold_acks:
                yield pb.EphemeralStreamResponse(
                    ingest_record_response=pb.IngestRecordResponse(durability_ack_up_to_offset=offset)
                )


class _OidcHandler(BaseHTTPRequestHandler):
    double: ZerobusDouble

    def do_POST(self):
        length = int(self.headers.get("content-length") or 0)
        self.rfile.read(length)
        expected = base64.b64encode(f"{self.double.client_id}:{self.double.client_secret}".encode()).decode()
        ok = self.path == "/oidc/v1/token" and self.headers.get("authorization") == f"Basic {expected}"
        with self.double.lock:
            self.double.token_requests += 1
        body = json.dumps(
            {"access_token": TOKEN, "token_type": "Bearer", "expires_in": 3600} if ok else {"error": "invalid_client"}
        ).encode()
        self.send_response(200 if ok else 401)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        return None


class ZerobusDouble:
    """`with ZerobusDouble() as zb:` -> `zb.endpoint`, `zb.workspace_url`, `zb.rows(table)`."""

    def __init__(self, tls_dir: Path | None = None, client_id: str = "sp-client", client_secret: str = "sp-secret"):
        self.tls_dir = tls_dir
        self.client_id, self.client_secret = client_id, client_secret
        self.lock = threading.Lock()
        self.payloads: dict[str, list[bytes]] = {}
        self.descriptors: dict[str, descriptor_pb2.DescriptorProto] = {}
        self.creates = self.stream_seq = self.token_requests = 0
        self.down = False
        self.withhold_acks = False
        self.reject_create: grpc.StatusCode | None = None
        self.ca_file: Path | None = None
        self.grpc_port = self.http_port = 0  # chosen by the first start; a restart binds the same ones

    def start(self) -> ZerobusDouble:
        """Serve; after `stop()`, starts again on the same ports with what it received so far (a restart)."""
        options = [("grpc.max_receive_message_length", 16 << 20), ("grpc.so_reuseport", 0)]
        self._grpc = grpc.server(futures.ThreadPoolExecutor(max_workers=8), options=options)
        pb_grpc.add_ZerobusServicer_to_server(_Servicer(self), self._grpc)
        handler = type("Handler", (_OidcHandler,), {"double": self})
        self._http = ThreadingHTTPServer(("127.0.0.1", self.http_port), handler)
        if self.tls_dir is not None:
            import ssl

            if self.ca_file is None:
                self.ca_file, self._cert, self._key = make_tls_files(self.tls_dir)
            cert, key = self._cert, self._key
            creds = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
            port = self._grpc.add_secure_port(f"127.0.0.1:{self.grpc_port}", creds)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(cert, key)
            self._http.socket = ctx.wrap_socket(self._http.socket, server_side=True)
            scheme, host = "https", "localhost"
        else:
            port = self._grpc.add_insecure_port(f"127.0.0.1:{self.grpc_port}")
            scheme, host = "http", "127.0.0.1"
        self.grpc_port, self.http_port = port, self._http.server_address[1]
        self._grpc.start()
        threading.Thread(target=self._http.serve_forever, daemon=True, name="oidc-double").start()
        self.endpoint = f"{scheme}://{host}:{port}"
        self.workspace_url = f"{scheme}://{host}:{self._http.server_address[1]}"
        return self

    def stop(self) -> None:
        self._grpc.stop(grace=None).wait(5)
        self._http.shutdown()
        self._http.server_close()

    def __enter__(self) -> ZerobusDouble:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every record received for `table` (at least once, in arrival order), decoded to dicts."""
        with self.lock:
            payloads = list(self.payloads.get(table, []))
            descriptor = self.descriptors.get(table)
        if descriptor is None:
            return []
        cls = _message_class(descriptor)
        return [
            json_format.MessageToDict(cls.FromString(p), preserving_proto_field_name=True, use_integers_for_enums=True)
            for p in payloads
        ]

    def count(self, table: str) -> int:
        with self.lock:
            return len(self.payloads.get(table, []))
