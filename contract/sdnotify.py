"""systemd's notify protocol (sd_notify(3)), for both programs: `READY=1` once the main loop runs,
`WATCHDOG=1` from the main loop so that a hung loop (a sensor read that never returns, a stuck write)
gets the process restarted, `STOPPING=1` on the way out.

The protocol is one datagram per message on the unix socket named by `$NOTIFY_SOCKET` (a leading
`@` means the abstract namespace). Without that variable (not under systemd, or in a test) every
call is a no-op. The watchdog period comes from `$WATCHDOG_USEC`; we ping at half of it.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

log = logging.getLogger(__name__)


class Notifier:
    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        env = os.environ if env is None else env
        self._monotonic = monotonic
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        pid = env.get("WATCHDOG_PID", "")
        watchdog_for_us = not pid or pid == str(os.getpid())
        self.watchdog_s = int(usec) / 1e6 / 2 if usec.isdigit() and watchdog_for_us else None
        self._last_ping: float | None = None
        self._ready = False
        self._warned = False

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def send(self, message: str) -> bool:
        if not self._address:
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.sendto(message.encode(), self._address)
        except OSError as exc:
            if not self._warned:  # once: a missing socket must not become a log flood
                log.warning("cannot notify systemd at %s: %s", self._address, exc)
                self._warned = True
            return False
        return True

    def ready(self) -> None:
        if not self._ready:
            self._ready = self.send("READY=1")
            self._last_ping = self._monotonic()

    def tick(self) -> None:
        """Call from the main loop: sends READY=1 the first time, then WATCHDOG=1 when due."""
        if not self._ready:
            self.ready()
            return
        if self.watchdog_s is None:
            return
        now = self._monotonic()
        if self._last_ping is None or now - self._last_ping >= self.watchdog_s:
            self.send("WATCHDOG=1")
            self._last_ping = now

    def stopping(self) -> None:
        self.send("STOPPING=1")
