"""`run` with `[web]`: the dashboard as a child process (`minewatch-gateway serve`), started and
restarted by the gateway, so that nothing the public does to the pages reaches ingest or alerts.

The child has its own open files (a flood of connections that takes them all leaves ingest's, the
spool's and the alert channels' alone: issue 22), its own interpreter lock (rendering pages for a
crowd runs on the other core, not between ingest's batches), a lower CPU priority (nice 10: when
the cores are busy, ingest and alerts go first) and its own memory; if it dies it is
started again, waiting 1 s, then twice as long each time up to a minute (back to 1 s once it ran a
minute). It takes node statuses from the broker's retained topics under a client id of its own, as
`serve` alone does.

The two are joined by a socket pair: the child writes a line once it listens, and stops when the
gateway's end closes, even after a `kill -9` of the gateway (no orphan holding the port). Nothing
here imports the web stack: the child does.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import subprocess
import sys
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

LISTENING = b"listening\n"
RESTART_MIN_S, RESTART_MAX_S = 1.0, 60.0
STOP_WAIT_S = 10.0
NICE = 10  # the child's niceness: on a Pi's few cores a crowd on the pages waits, not ingest
SERVE = (sys.executable, "-m", "gateway.cli", "serve")


class WebProcess:
    def __init__(self, config: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._now = monotonic
        self._proc: subprocess.Popen[bytes] | None = None
        self._link: socket.socket | None = None
        self._started_at = 0.0
        self._backoff_s = RESTART_MIN_S
        self._restart_at: float | None = None
        self.restarts = 0

    def _spawn(self) -> None:
        ours, theirs = socket.socketpair()
        try:
            # Its own session: a Ctrl-C in a terminal goes to the gateway, which then stops it.
            self._proc = subprocess.Popen(
                [*SERVE, "--config", self._config, "--supervised-fd", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        self._link, self._started_at = ours, self._now()

    def start(self, timeout_s: float = 60.0) -> None:
        """Start the child and wait until it listens; OSError when it cannot (it says why on its
        own stderr, the same journal as ours)."""
        self._spawn()
        assert self._link is not None and self._proc is not None
        self._link.settimeout(timeout_s)
        try:
            line = self._link.recv(len(LISTENING))
        except TimeoutError:
            line = None
        if line != LISTENING:
            try:
                code: int | None = self._proc.wait(STOP_WAIT_S if line is not None else 0)
            except subprocess.TimeoutExpired:
                code = None
            self.stop()
            why = f"no answer in {timeout_s:.0f} s" if line is None else f"exit status {code}"
            raise OSError(f"the dashboard did not start ({why}): see its lines above")
        self._link.settimeout(None)

    def tick(self) -> None:
        """From the gateway's loop, once a second: start the child again if it has died."""
        if self._proc is None:
            return
        now = self._now()
        if self._restart_at is None:
            code = self._proc.poll()
            if code is None:
                if now - self._started_at > RESTART_MAX_S:
                    self._backoff_s = RESTART_MIN_S
                return
            self._close_link()
            self._restart_at = now + self._backoff_s
            log.warning(
                "dashboard process exited with status %d; starting it again in %.0f s", code, self._backoff_s
            )
            self._backoff_s = min(self._backoff_s * 2, RESTART_MAX_S)
        if now >= self._restart_at:
            self._restart_at = None
            self.restarts += 1
            try:
                self._spawn()
            except OSError as exc:  # out of processes or files ourselves: try again later
                log.warning("cannot start the dashboard process: %s", exc)
                self._restart_at = now + self._backoff_s

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    def _close_link(self) -> None:
        if self._link is not None:
            self._link.close()
            self._link = None

    def stop(self) -> None:
        """Close our end (the child stops on it), then SIGTERM, then SIGKILL after STOP_WAIT_S."""
        self._close_link()
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_WAIT_S)
