"""Bodies read by the transport in large pieces: whole, on one kept-alive connection, and a stall mid-body
still gives the read_timeout error. A bare socket server on 127.0.0.1 plays the misbehaving peer."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import requests

from osipi_connector.piwebapi.client import PIWebAPIClient, PIWebAPIError
from osipi_connector.piwebapi.settings import ClientSettings, RetrySettings
from osipi_connector.piwebapi.transport import BODY_CHUNK_BYTES
from tests.client.conftest import FAST_RETRY, first_points, make_client

Serve = Callable[[socket.socket, threading.Event], None]


@contextmanager
def raw_server(serve: Serve) -> Iterator[tuple[str, list[int]]]:
    """(base URL, connection log) of a socket server running `serve` once per accepted connection."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()
    connections: list[int] = []

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            connections.append(len(connections))
            with conn:
                serve(conn, stop)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/piwebapi", connections
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def read_request(conn: socket.socket) -> bool:
    """Read one request head (these tests send GETs without a body); False when the client closed."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = conn.recv(65536)
        if not piece:
            return False
        data += piece
    return True


def client_for(url: str, **settings: object) -> PIWebAPIClient:
    settings.setdefault("retry", FAST_RETRY)
    return PIWebAPIClient(ClientSettings(url=url, auth_type="anonymous", **settings))


def test_a_body_of_many_pieces_arrives_whole(simulator):
    with make_client(simulator) as client:
        webid = first_points(client, 1)[0]["WebId"]
        params = {"startTime": "2025-02-01T00:00:00Z", "endTime": "2025-03-01T00:00:00Z", "maxCount": 150000}
        raw = client.get_bytes(f"streams/{webid}/recorded", params)
    direct = requests.get(f"{simulator.url}/streams/{webid}/recorded", params=params, timeout=30).content
    assert len(raw) > 2 * BODY_CHUNK_BYTES  # several pieces, or this test proves nothing
    assert raw == direct


def test_answers_read_to_the_end_keep_their_connection():
    body = b'{"Items": [1, 2, 3]}'

    def keep_alive(conn: socket.socket, stop: threading.Event) -> None:
        conn.settimeout(5)
        while not stop.is_set() and read_request(conn):
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            conn.sendall(head.encode() + body)

    with raw_server(keep_alive) as (url, connections), client_for(url, max_connections=1) as client:
        answers = [client.get_json("items") for _ in range(5)]
    assert answers == [{"Items": [1, 2, 3]}] * 5
    assert len(connections) == 1  # the body was read and the connection went back to the pool each time


def test_a_stall_in_the_middle_of_the_body_is_a_read_timeout():
    def stall(conn: socket.socket, stop: threading.Event) -> None:
        if not read_request(conn):
            return
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")
        conn.sendall(b'a\r\n{"Items": [\r\n')  # the first 10 bytes of the body, then nothing
        stop.wait(3)

    retry = RetrySettings(max_attempts=2, backoff_seconds=0.01)
    with (
        raw_server(stall) as (url, connections),
        client_for(url, read_timeout=0.2, retry=retry) as client,
        pytest.raises(PIWebAPIError) as caught,
    ):
        client.get_json("slow")
    assert caught.value.status == 0
    assert "no answer within read_timeout=0.2 s" in str(caught.value)
    assert "Raise pi_web_api.timeout" in str(caught.value)
    assert len(connections) == 1
