"""Where a reading's signature check runs: in the gateway's main thread (`inline`), or in a worker
process (`worker`, gateway/trust/sigworker.py) while the main thread parses the next readings.

Ingest hands each batch's checks over as it fills (`submit`) and takes the verdicts before the
batch is written (`collect`), so a reading is still stored, and acknowledged, only once its
signature passed and it is durable. A worker that fails (killed, or it cannot start) is not fatal:
the checks it held and every later one run inline, and the failure is logged once.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

from gateway.trust.sigworker import COUNT, HEAD
from gateway.trust.verifier import SignatureCheck

log = logging.getLogger(__name__)


class CheckIn(StrEnum):
    INLINE = "inline"
    WORKER = "worker"


class Checks(Protocol):
    def submit(self, checks: Sequence[SignatureCheck]) -> None:
        """Start these checks (they may run in the background)."""

    def collect(self) -> list[bool]:
        """The verdicts of every check submitted since the last collect, in order."""

    def close(self) -> None: ...


class InlineChecks:
    def __init__(self) -> None:
        self._pending: list[SignatureCheck] = []

    def submit(self, checks: Sequence[SignatureCheck]) -> None:
        self._pending.extend(checks)

    def collect(self) -> list[bool]:
        out = [c.passes() for c in self._pending]
        self._pending = []
        return out

    def close(self) -> None:
        self._pending = []


class WorkerChecks:
    """Checks in a worker process, started at the first submit. The checks stay here too until
    their verdicts come back, so that a worker lost in between costs only time."""

    def __init__(self, argv: Sequence[str] | None = None) -> None:
        self._argv = list(argv or [sys.executable, "-m", "gateway.trust.sigworker"])
        self._proc: subprocess.Popen[bytes] | None = None
        self._pending: list[SignatureCheck] = []
        self._broken = False

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def submit(self, checks: Sequence[SignatureCheck]) -> None:
        if not checks:
            return
        self._pending.extend(checks)
        if self._broken:
            return
        frame = [COUNT.pack(len(checks))]
        for c in checks:
            message = c.message
            frame += (HEAD.pack(c.public, c.sig, len(message)), message)
        try:
            proc = self._started()
            assert proc.stdin is not None
            proc.stdin.write(b"".join(frame))
            proc.stdin.flush()
        except OSError as exc:
            self._lost(exc)

    def collect(self) -> list[bool]:
        pending, self._pending = self._pending, []
        if not pending:
            return []
        if not self._broken and self._proc is not None:
            try:
                answers = self._read(len(pending))
                return [b == 1 for b in answers]
            except (OSError, EOFError) as exc:
                self._lost(exc)
        return [c.passes() for c in pending]

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()  # the worker ends at the end of its input
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()

    def _started(self) -> subprocess.Popen[bytes]:
        if self._proc is None:
            self._proc = subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        return self._proc

    def _read(self, n: int) -> bytes:
        assert self._proc is not None and self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        out = bytearray()
        while len(out) < n:
            chunk = os.read(fd, n - len(out))
            if not chunk:
                raise EOFError(f"the signature worker ended (exit status {self._proc.poll()})")
            out += chunk
        return bytes(out)

    def _lost(self, exc: BaseException) -> None:
        log.error("signature worker failed (%s); checking signatures in the main thread from now on", exc)
        self._broken = True
        proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill()
            proc.wait()


def checks_for(where: CheckIn) -> Checks:
    return WorkerChecks() if where is CheckIn.WORKER else InlineChecks()
