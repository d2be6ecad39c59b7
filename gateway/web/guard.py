"""What a hostile client may hold of the dashboard: a connection cap, a header deadline and a stall
deadline, around uvicorn's h11 protocol.

uvicorn closes a keep-alive connection `timeout_keep_alive` after a response, but a connection that
never sends a byte, or sends its headers one line every few seconds (slowloris), is kept for ever,
and `limit_concurrency` only answers 503 once a whole request has come: 1,100 such connections took
every file the process had (issue 22). So each accepted connection passes here first:

- beyond `max_connections` open at once it is reset at once, before uvicorn sees it, so the process
  keeps files for its own work (templates, the database) whatever the flood;
- from connecting, and from the first byte of each later request, the client has `header_timeout_s`
  to end its headers (the blank line): the dashboard only serves GET, so no body is waited for;
- a response the client stops reading (the transport's buffer stays full) is dropped after
  `idle_timeout_s`; between requests uvicorn's own keep-alive timeout, set to the same, applies.

The wrapper sees the bytes uvicorn sees and touches nothing of uvicorn's inside.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)
HEADERS_END = b"\r\n\r\n"
REPORT_EVERY_S = 60.0


@dataclass
class Gate:
    """The limits and counts one server's connections share (all on the server's event loop).
    Refusals are logged when they start and then at most once per `REPORT_EVERY_S`, with a count."""

    max_connections: int
    header_timeout_s: float
    idle_timeout_s: float
    monotonic: Callable[[], float] = time.monotonic
    open: int = 0
    refused: int = 0  # since the last report
    timed_out: int = 0
    _reported_at: float | None = None

    def admit(self) -> bool:
        if self.open < self.max_connections:
            self.open += 1
            return True
        self.refused += 1
        now = self.monotonic()
        if self._reported_at is None:
            log.warning("dashboard: %d connections open ([web] max_connections); refusing more", self.open)
            self._reported_at, self.refused = now, 0
        elif now - self._reported_at >= REPORT_EVERY_S:
            log.warning(
                "dashboard: %d connections refused in the last %.0f s ([web] max_connections = %d)",
                self.refused,
                now - self._reported_at,
                self.max_connections,
            )
            self._reported_at, self.refused = now, 0
        return False


class Guarded(asyncio.Protocol):
    """One connection: uvicorn's protocol inside, our deadlines around it."""

    gate: ClassVar[Gate]

    def __init__(self, **uvicorn_args: Any) -> None:
        self._inner = H11Protocol(**uvicorn_args)
        self._transport: asyncio.BaseTransport | None = None
        self._admitted = False
        self._headers_due: asyncio.TimerHandle | None = None
        self._stalled: asyncio.TimerHandle | None = None
        self._tail = b""  # the last bytes of an unfinished header block, for an end split in two

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.gate.admit():
            assert isinstance(transport, asyncio.Transport)
            transport.abort()  # a reset frees the file now; a polite close would wait on the client
            return
        self._admitted, self._transport = True, transport
        self._arm_headers()
        self._inner.connection_made(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        self._watch(data)
        self._inner.data_received(data)

    def _watch(self, data: bytes) -> None:
        if self._headers_due is None and data:
            self._arm_headers()  # a new request begins
        buf = self._tail + data
        while (end := buf.find(HEADERS_END)) >= 0:
            self._cancel_headers()
            buf = buf[end + len(HEADERS_END) :]
            if buf:
                self._arm_headers()  # pipelined: the next request has begun
        self._tail = buf[-(len(HEADERS_END) - 1) :] if self._headers_due is not None else b""

    def _arm_headers(self) -> None:
        self._cancel_headers()
        loop = asyncio.get_running_loop()
        self._headers_due = loop.call_later(self.gate.header_timeout_s, self._expire, "headers")

    def _cancel_headers(self) -> None:
        if self._headers_due is not None:
            self._headers_due.cancel()
            self._headers_due = None

    def _expire(self, what: str) -> None:
        self._headers_due = self._stalled = None
        self.gate.timed_out += 1
        log.debug("dashboard: %s not in time; connection dropped", what)
        if isinstance(self._transport, asyncio.Transport):
            self._transport.abort()

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None  # type: ignore[func-returns-value]

    def pause_writing(self) -> None:
        if self._stalled is None:
            self._stalled = asyncio.get_running_loop().call_later(
                self.gate.idle_timeout_s, self._expire, "reading of the response"
            )
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self.gate.open -= 1
        self._cancel_headers()
        if self._stalled is not None:
            self._stalled.cancel()
            self._stalled = None
        self._inner.connection_lost(exc)


def protocol_for(gate: Gate) -> type[asyncio.Protocol]:
    """A protocol class for uvicorn's `http=` whose connections share `gate`."""
    return type("GuardedH11", (Guarded,), {"gate": gate})
