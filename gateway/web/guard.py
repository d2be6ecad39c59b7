"""What a hostile client may hold of the dashboard: a connection cap, a header deadline, a body
deadline and a stall deadline, around uvicorn's h11 protocol.

uvicorn closes a keep-alive connection `timeout_keep_alive` after a response, but a connection that
never sends a byte, or sends its headers one line every few seconds (slowloris), is kept for ever,
and `limit_concurrency` only answers 503 once a whole request has come: 1,100 such connections took
every file the process had (issue 22). So each accepted connection passes here first:

- beyond `max_connections` open at once it is reset at once, before uvicorn sees it, so the process
  keeps files for its own work (templates, the database) whatever the flood;
- from connecting, and from the first byte of each later request, the client has `header_timeout_s`
  to end its headers (the blank line);
- a request's body (the observation form's photo, issue 21) has `body_timeout_s` from the end of its
  headers to its end, and may pause at most `idle_timeout_s` between bytes: a photo from a phone on
  a slow link takes minutes, where headers take a packet, so the header deadline must not count it
  (it did, and cut every upload longer than 10 s);
- a response the client stops reading (the transport's buffer stays full) is dropped after
  `idle_timeout_s`; between requests uvicorn's own keep-alive timeout, set to the same, applies.

Where a request's headers end and its body ends is h11's to say (a body may be chunked): after
uvicorn has taken each packet, the wrapper reads the parser's state (`their_state`, and the bytes
it holds unparsed) and picks the deadline the client is under. It changes nothing of uvicorn's.
A deadline that falls while uvicorn itself has stopped reading (the app has not taken the body
yet) is put off: then the wait is ours, not the client's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import h11
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
    body_timeout_s: float = 300.0
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
        self._body_due: asyncio.TimerHandle | None = None  # the whole body, from its headers' end
        self._body_gap: asyncio.TimerHandle | None = None  # the next body byte
        self._stalled: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self.gate.admit():
            assert isinstance(transport, asyncio.Transport)
            transport.abort()  # a reset frees the file now; a polite close would wait on the client
            return
        self._admitted, self._transport = True, transport
        self._headers_due = self._later(self.gate.header_timeout_s, "headers")
        self._inner.connection_made(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return
        self._inner.data_received(data)
        if self._admitted:  # uvicorn may have dropped the connection (a malformed request)
            self._pace()

    def _pace(self) -> None:
        """Pick the deadline the client is under, from where h11 is in the request."""
        conn = self._inner.conn
        state = conn.their_state
        unparsed = conn.trailing_data[0]
        if state is h11.SEND_BODY:  # headers done, the body coming
            self._headers_due = _cancel(self._headers_due)
            if self._body_due is None:
                self._body_due = self._later(self.gate.body_timeout_s, "body")
            self._body_gap = _cancel(self._body_gap)
            self._body_gap = self._later(self.gate.idle_timeout_s, "body (a pause)")
            return
        self._body_due = _cancel(self._body_due)
        self._body_gap = _cancel(self._body_gap)
        # IDLE with bytes held: a request has begun and its headers have not ended. DONE with bytes
        # held: the next one, pipelined, waits for this response; its headers may be whole already.
        if unparsed and (state is h11.IDLE or (state is h11.DONE and HEADERS_END not in unparsed)):
            if self._headers_due is None:
                self._headers_due = self._later(self.gate.header_timeout_s, "headers")
        elif state is not h11.IDLE:  # IDLE and nothing held: still the deadline from connecting
            self._headers_due = _cancel(self._headers_due)

    def _later(self, delay_s: float, what: str) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay_s, self._expire, what)

    def _expire(self, what: str) -> None:
        transport = self._transport
        paused = isinstance(transport, asyncio.Transport) and not transport.is_reading()
        if what.startswith("body") and paused:
            # uvicorn paused reading until the app takes what it holds: the client is not late
            again = self._later(self.gate.idle_timeout_s, what)
            if what == "body":
                self._body_due = again
            else:
                self._body_gap = again
            return
        self._headers_due = _cancel(self._headers_due)
        self._body_due = _cancel(self._body_due)
        self._body_gap = _cancel(self._body_gap)
        self._stalled = _cancel(self._stalled)
        self.gate.timed_out += 1
        log.debug("dashboard: %s not in time; connection dropped", what)
        if isinstance(transport, asyncio.Transport):
            transport.abort()

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._admitted else None  # type: ignore[func-returns-value]

    def pause_writing(self) -> None:
        if self._stalled is None:
            self._stalled = self._later(self.gate.idle_timeout_s, "reading of the response")
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._stalled = _cancel(self._stalled)
        self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._admitted:
            return
        self._admitted = False
        self.gate.open -= 1
        self._headers_due = _cancel(self._headers_due)
        self._body_due = _cancel(self._body_due)
        self._body_gap = _cancel(self._body_gap)
        self._stalled = _cancel(self._stalled)
        self._inner.connection_lost(exc)


def _cancel(timer: asyncio.TimerHandle | None) -> asyncio.TimerHandle | None:
    """Cancel `timer` if there is one; returns None, to assign in the same line."""
    if timer is not None:
        timer.cancel()
    return None


def protocol_for(gate: Gate) -> type[asyncio.Protocol]:
    """A protocol class for uvicorn's `http=` whose connections share `gate`."""
    return type("GuardedH11", (Guarded,), {"gate": gate})
