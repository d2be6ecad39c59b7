"""A TCP proxy in front of a test server that the test switches off and on. Off, every connection
is reset (those open and each new one), so the server cannot be reached while the browser still
believes it is online (`navigator.onLine` stays true), as on a phone whose weak link carries
nothing: the case CDP's offline emulation does not cover. Silent, it accepts and then says
nothing: connections open then and each new one swallow what the browser sends and never answer,
as a link that still looks up but carries nothing (no reset for the browser to notice)."""

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
        self._silent = False
        self._dead: set[socket.socket] = set()  # client sockets swallowed: never answered again
        self.refused = 0  # connections reset while off: the browser tried
        self.swallowed = b""  # what the browser sent into the silence
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
        """Forward new connections again; those swallowed stay silent (the browser must give up)."""
        with self._lock:
            self._on, self._silent = True, False

    def silent(self) -> None:
        """Accept and never answer: every open connection and each new one goes quiet."""
        with self._lock:
            self._silent = True
            self._dead.update(self._open[::2])  # the browser's ends (client, server pairs)

    def close(self) -> None:
        self.off()
        with self._lock:
            for sock in self._dead:
                _reset(sock)
            self._dead.clear()
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
                if self._silent:
                    self._dead.add(client)
                    threading.Thread(target=self._swallow, args=(client,), daemon=True).start()
                    continue
                server = socket.create_connection(("127.0.0.1", self._target))
                self._open += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b, client), daemon=True).start()

    def _swallow(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := client.recv(65536):
                with self._lock:
                    self.swallowed += data

    def _pipe(self, src: socket.socket, dst: socket.socket, client: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                if client in self._dead:  # gone silent: nothing passes either way, nothing closes
                    if src is client:
                        with self._lock:
                            self.swallowed += data
                    continue
                dst.sendall(data)
        except OSError:
            pass
        if client in self._dead:
            return  # the browser's end stays open and silent until the browser closes it
        _close(src, dst)


def _close(src: socket.socket, dst: socket.socket) -> None:
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
