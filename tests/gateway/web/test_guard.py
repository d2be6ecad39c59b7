"""The dashboard's connection limits on the real uvicorn server (gateway/web/guard.py): a client must
end its headers within `header_timeout_s`, a request's body may take `body_timeout_s` (a photo over a
slow link) but not pause longer than `idle_timeout_s`, an idle keep-alive connection goes after
`idle_timeout_s`, and beyond `max_connections` a connection is reset at once, before it costs
anything more."""

from __future__ import annotations

import asyncio
import logging
import resource
import socket
import time
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

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


async def _count(request: Request) -> JSONResponse:
    return JSONResponse({"received": len(await request.body())})


async def _count_later(request: Request) -> JSONResponse:
    await asyncio.sleep(2.5)  # busy elsewhere: uvicorn stops reading the body meanwhile
    return await _count(request)


@pytest.fixture
def upload() -> Iterator[WebConfig]:
    """The real server and guard in front of an app that reads a POST body whole, with deadlines
    shortened so that a trickle of a few seconds outlasts the header deadline five times over."""
    web = WebConfig(
        port=free_port(), max_connections=3, header_timeout_s=0.6, idle_timeout_s=1, body_timeout_s=4
    )
    server = BackgroundServer(
        Starlette(
            routes=[Route("/up", _count, methods=["POST"]), Route("/later", _count_later, methods=["POST"])]
        ),
        web,
    )
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


BODY = bytes(range(256)) * 160  # 40 KB, as a small photo
POST = b"POST /up HTTP/1.1\r\nHost: dashboard\r\nContent-Type: application/octet-stream\r\n"


def _trickle(sock: socket.socket, pieces: list[bytes], gap_s: float) -> None:
    for piece in pieces:
        sock.sendall(piece)
        time.sleep(gap_s)


def _split(data: bytes, n: int) -> list[bytes]:
    step = -(-len(data) // n)
    return [data[i : i + step] for i in range(0, len(data), step)]


def _chunked(data: bytes, n: int) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in _split(data, n)) + b"0\r\n\r\n"


def _json_response(sock: socket.socket) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before a response: {data!r}"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(v for k, v in _headers(head) if k == b"content-length"))
    while len(body) < length:
        body += sock.recv(65536)
    return head, body


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_body_trickled_for_much_longer_than_the_header_deadline_is_served(
    upload: WebConfig, framing: str
) -> None:
    if framing == "chunked":
        head, body = POST + b"Transfer-Encoding: chunked\r\n\r\n", _chunked(BODY, 12)
    else:
        head, body = POST + b"Content-Length: %d\r\n\r\n" % len(BODY), BODY
    pieces = _split(body, 25)
    pieces[0] = head + pieces[0]  # the body's first bytes in the headers' packet, as a browser sends
    with _connect(upload) as sock:
        start = time.monotonic()
        _trickle(sock, pieces, 0.12)  # 3 s: five header deadlines, each pause well under idle_timeout_s
        status, doc = _json_response(sock)
        assert time.monotonic() - start > 5 * upload.header_timeout_s
        assert status.startswith(b"HTTP/1.1 200") and doc == b'{"received":%d}' % len(BODY)
        # the next request on the same connection is under the header deadline again
        start = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: dash")
        assert 0.5 < _closed_after(sock, start) < 2.0


def test_a_body_that_pauses_too_long_or_outlasts_its_deadline_is_dropped(upload: WebConfig) -> None:
    head = POST + b"Content-Length: %d\r\n\r\n" % len(BODY)
    with _connect(upload) as stalled:
        stalled.sendall(head + BODY[:1000])
        start = time.monotonic()
        assert 0.8 < _closed_after(stalled, start) < 2.5  # idle_timeout_s = 1 without a byte
    with _connect(upload) as slow:
        start = time.monotonic()
        slow.sendall(head)
        try:  # a byte every 0.3 s keeps it from pausing, never from ending: body_timeout_s = 4
            for i in range(len(BODY)):
                slow.sendall(BODY[i : i + 1])
                time.sleep(0.3)
        except OSError:
            pass
        assert 3.5 < _closed_after(slow, start) < 6.0


def test_a_body_the_app_is_slow_to_read_is_not_the_clients_pause(upload: WebConfig) -> None:
    body = BODY * 8  # 320 KB: more than uvicorn holds before it stops reading (64 KB)
    with _connect(upload) as sock:
        sock.sendall(b"POST /later" + POST[len(b"POST /up") :] + b"Content-Length: %d\r\n\r\n" % len(body))
        sock.sendall(body)  # at once; the app waits 2.5 s, over idle_timeout_s, before it reads
        status, doc = _json_response(sock)
        assert status.startswith(b"HTTP/1.1 200") and doc == b'{"received":%d}' % len(body)


def test_pipelined_requests_are_served_and_an_unended_one_after_them_is_cut(web: WebConfig) -> None:
    with _connect(web) as sock:
        start = time.monotonic()
        sock.sendall(REQUEST + REQUEST + b"GET / HTTP/1.1\r\nHost: dash")  # the third never ends
        assert _response(sock).startswith(b"HTTP/1.1 200")
        assert _response(sock).startswith(b"HTTP/1.1 200")
        # held by uvicorn after the responses, the third is under its keep-alive timeout (the
        # guard sees no new byte to start the header deadline on): idle_timeout_s, not for ever
        assert 0.5 < _closed_after(sock, start) < 2.5
