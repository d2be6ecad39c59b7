"""The dashboard's connection limits on the real uvicorn server (gateway/web/guard.py): a client must
end its headers within `header_timeout_s`, an idle keep-alive connection goes after `idle_timeout_s`,
and beyond `max_connections` a connection is reset at once, before it costs anything more."""

from __future__ import annotations

import logging
import resource
import socket
import time
from collections.abc import Iterator

import pytest

from gateway.config import InfluxConfig, WebConfig
from gateway.devservices import free_port
from gateway.stores.influx_read import InfluxReader
from gateway.stores.influx_v1 import InfluxV1
from gateway.web.app import create_app
from gateway.web.server import RESERVED_FILES, BackgroundServer, limits_for
from tests.webdata import NOW

REQUEST = b"GET /api/v1/openapi.json HTTP/1.1\r\nHost: dashboard\r\n\r\n"


@pytest.fixture
def web() -> Iterator[WebConfig]:
    web = WebConfig(port=free_port(), max_connections=3, header_timeout_s=0.6, idle_timeout_s=1)
    nowhere = InfluxV1(InfluxConfig(url=f"http://127.0.0.1:{free_port()}", database="minewatch"))  # type: ignore[arg-type]
    server = BackgroundServer(create_app(web, InfluxReader(nowhere), clock=lambda: NOW), web)
    server.start()
    yield web
    server.stop()


def _connect(web: WebConfig) -> socket.socket:
    return socket.create_connection(("127.0.0.1", web.port), timeout=10)


def _closed_after(sock: socket.socket, start: float) -> float:
    """Seconds from `start` until the server let go (EOF or reset), reading whatever came first."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        pass
    return time.monotonic() - start


def _response(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed before a response"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(v for k, v in _headers(head) if k == b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head


def _headers(head: bytes) -> list[tuple[bytes, bytes]]:
    lines = head.split(b"\r\n")[1:]
    return [(k.strip().lower(), v.strip()) for k, _, v in (line.partition(b":") for line in lines)]


def test_slow_headers_and_silence_are_dropped_after_header_timeout(web: WebConfig) -> None:
    silent, slow = _connect(web), _connect(web)
    start = time.monotonic()
    slow.sendall(b"GET / HTTP/1.1\r\nHost: dashboard\r\n")
    for _ in range(3):  # a header line every 0.2 s keeps bytes coming, never the end of the headers
        time.sleep(0.2)
        try:
            slow.sendall(b"X-Drip: 1\r\n")
        except OSError:
            break
    assert 0.5 < _closed_after(slow, start) < 2.0
    assert 0.5 < _closed_after(silent, start) < 2.0


def test_a_request_in_pieces_within_the_deadline_is_served_and_idle_keep_alive_ends(web: WebConfig) -> None:
    with _connect(web) as sock:
        sock.sendall(REQUEST[:-1])  # the end of the headers split across two packets
        time.sleep(0.3)
        sock.sendall(REQUEST[-1:])
        assert _response(sock).startswith(b"HTTP/1.1 200")
        time.sleep(0.4)  # well under the header deadline again: the next request is a new one
        sock.sendall(REQUEST)
        assert _response(sock).startswith(b"HTTP/1.1 200")
        start = time.monotonic()
        assert 0.8 < _closed_after(sock, start) < 2.5  # idle_timeout_s = 1 after the response


def test_beyond_max_connections_a_connection_is_reset_at_once(web: WebConfig) -> None:
    held = [_connect(web) for _ in range(3)]
    time.sleep(0.1)  # accepted and counted
    extra = _connect(web)
    assert _closed_after(extra, time.monotonic()) < 0.3  # long before the header deadline
    held[0].close()
    time.sleep(0.1)
    with _connect(web) as again:  # a slot free again: served
        again.sendall(REQUEST)
        assert _response(again).startswith(b"HTTP/1.1 200")
    for sock in held[1:]:
        sock.close()


def test_max_connections_stays_below_the_open_file_limit(caplog: pytest.LogCaptureFixture) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))
    try:
        gate, backlog = limits_for(WebConfig(max_connections=10_000))
        small, _ = limits_for(WebConfig(max_connections=100))
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    # what is open plus one backlog of accepts in one go must leave the reserved files free
    assert gate.max_connections + backlog == 256 - RESERVED_FILES
    assert gate.max_connections > 100 and small.max_connections == 100
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    using = gate.max_connections
    assert warned == [
        f"[web] max_connections = 10000 is more than the open-file limit (256) leaves; using {using}"
    ]
