"""A bounded flood of idle and slow-header (slowloris) TCP connections against an HTTP port, as the
attack run of issue 22 made it: `idle` connections that never send a byte and `slow` ones that send
a request line and then one header line every `drip_s`, never the blank line ending the headers.
A connection the server closes is opened again a second later, so the pressure lasts. Used by the
flood test (tests/gateway/web/test_flood.py) and bench/web_flood.py.

A connection's lifetime is counted from its TCP handshake's end (the socket turning writable), not
from the `connect` call: while the server's listen backlog is full the kernel drops the SYN and the
client sends it again 1 s later, then 2 s after that, and that wait is no part of the server's
header deadline (on a loaded machine, lifetimes counted from the call clustered 1 s and 3 s above
the cap's refusals and the deadline's drops)."""

from __future__ import annotations

import contextlib
import errno
import selectors
import socket
import threading
import time
from dataclasses import dataclass, field

REOPEN_AFTER_S = 1.0


@dataclass
class _Slot:
    slow: bool
    sock: socket.socket | None = None
    opened_at: float = 0.0  # the connect call
    connected_at: float | None = None  # the handshake's end: None while it is under way
    next_drip: float = 0.0
    reopen_at: float = 0.0
    sent_request: bool = False


@dataclass
class FloodStats:
    opened: int = 0
    failed: int = 0  # connect refused, or reset before the flood saw the handshake end
    closed_by_server: int = 0  # after the handshake: only these have a lifetime
    lifetimes_s: dict[str, list[float]] = field(default_factory=lambda: {"idle": [], "slow": []})


class Flood:
    def __init__(
        self, port: int, *, idle: int, slow: int, drip_s: float = 1.0, host: str = "127.0.0.1"
    ) -> None:
        self.addr = (host, port)
        self.drip_s = drip_s
        self.slots = [_Slot(slow=False) for _ in range(idle)] + [_Slot(slow=True) for _ in range(slow)]
        self.stats = FloodStats()
        self._sel = selectors.DefaultSelector()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="flood", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def open_now(self) -> int:
        """How many connections the flood holds open at this moment."""
        return sum(1 for s in self.slots if s.sock is not None)

    def _open(self, slot: _Slot, now: float) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex(self.addr)
        if code not in (0, errno.EINPROGRESS):
            sock.close()
            self.stats.failed += 1
            slot.reopen_at = now + REOPEN_AFTER_S
            return
        slot.sock, slot.opened_at, slot.connected_at, slot.sent_request = sock, now, None, False
        slot.next_drip = now + 0.05
        self.stats.opened += 1
        self._sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, slot)

    def _connected(self, slot: _Slot, now: float) -> None:
        """The handshake ended (writable): from now on only what the server sends matters."""
        assert slot.sock is not None
        if slot.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            self._close(slot, now, by_server=False)
            self.stats.failed += 1
            return
        slot.connected_at = now
        self._sel.modify(slot.sock, selectors.EVENT_READ, slot)

    def _close(self, slot: _Slot, now: float, *, by_server: bool) -> None:
        assert slot.sock is not None
        self._sel.unregister(slot.sock)
        slot.sock.close()
        slot.sock = None
        slot.reopen_at = now + REOPEN_AFTER_S
        if not by_server:
            return
        if slot.connected_at is None:  # refused, or reset before the flood saw it connected
            self.stats.failed += 1
            return
        self.stats.closed_by_server += 1
        self.stats.lifetimes_s["slow" if slot.slow else "idle"].append(now - slot.connected_at)

    def _drip(self, slot: _Slot, now: float) -> None:
        assert slot.sock is not None
        data = b"X-Drip: 1\r\n" if slot.sent_request else b"GET / HTTP/1.1\r\nHost: flood\r\n"
        try:
            slot.sock.send(data)
            slot.sent_request = True
        except BlockingIOError:
            pass  # not connected yet: next time
        except OSError:
            self._close(slot, now, by_server=True)
            return
        slot.next_drip = now + self.drip_s

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            for slot in self.slots:
                if slot.sock is None and now >= slot.reopen_at:
                    self._open(slot, now)
                elif slot.sock is not None and slot.slow and now >= slot.next_drip:
                    self._drip(slot, now)
            for key, events in self._sel.select(timeout=0.05):
                slot = key.data
                if slot.sock is None:
                    continue
                if slot.connected_at is None and events & selectors.EVENT_WRITE:
                    self._connected(slot, time.monotonic())
                    if slot.sock is None or not events & selectors.EVENT_READ:
                        continue
                try:
                    data = slot.sock.recv(4096)
                except BlockingIOError:
                    continue
                except OSError:
                    data = b""
                if not data:  # EOF or reset: the server let go of it
                    self._close(slot, time.monotonic(), by_server=True)
        for slot in self.slots:
            if slot.sock is not None:
                self._close(slot, time.monotonic(), by_server=False)
        self._sel.close()

    def stop(self) -> None:
        self._stop.set()
        with contextlib.suppress(RuntimeError):
            self._thread.join(10)


def main() -> None:
    """`python -m tests.flood PORT IDLE SLOW [NICE]`: flood until stdin closes, then print the counts
    as JSON. A process of its own (bench/web_flood.py), at a low priority if asked, so that on one
    machine the attacker's own CPU competes with the gateway as little as possible."""
    import json
    import os
    import resource
    import sys

    port, idle, slow = (int(a) for a in sys.argv[1:4])
    os.nice(int(sys.argv[4]) if len(sys.argv) > 4 else 0)
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    flood = Flood(port, idle=idle, slow=slow)
    flood.start()
    sys.stdin.read()
    held = flood.open_now()
    flood.stop()
    print(json.dumps({"held": held, "opened": flood.stats.opened, "closed": flood.stats.closed_by_server}))


if __name__ == "__main__":
    main()
