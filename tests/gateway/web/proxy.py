"""A TCP proxy in front of a test server that the test switches off and on. Off, every connection
is reset (those open and each new one), so the server cannot be reached while the browser still
believes it is online (`navigator.onLine` stays true), as on a phone whose weak link carries
nothing: the case CDP's offline emulation does not cover."""

from __future__ import annotations

import contextlib
import socket
import struct
import threading


class Switch:
    def __init__(self, target_port: int) -> None:
        self._target = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._open: list[socket.socket] = []
        self._on = True
        self.refused = 0  # connections reset while off: the browser tried
        threading.Thread(target=self._accept, name="proxy", daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def off(self) -> None:
        with self._lock:
            self._on = False
            for sock in self._open:
                _reset(sock)
            self._open.clear()

    def on(self) -> None:
        with self._lock:
            self._on = True

    def close(self) -> None:
        self.off()
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                if not self._on:
                    self.refused += 1
                    _reset(client)
                    continue
                server = socket.create_connection(("127.0.0.1", self._target))
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    for sock in (src, dst):  # shut down first: a close alone does not wake the other thread's recv
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with a reset (linger 0), as a dead link's far end looks to the browser."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
