"""`<outbox>.seq`: a number no `seq` of this node has passed, kept outside the outbox so that a
fresh outbox, started because the old one is damaged, never hands out a `seq` the gateway already has.

The file holds one decimal number, the top of a block of seqs the outbox may use; it is replaced
atomically (written beside, fsynced, renamed, the directory fsynced) before the first seq of the
next block is committed, so at every instant it is at least every seq ever committed. Writing it
once per block rather than per reading keeps it off the SD card's wear budget; the cost is a gap of
at most one block in `seq` after a damaged outbox was replaced.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

BLOCK = 1000
"""Seqs leased per write of the file: a gap of at most this many after a damaged outbox."""


class SeqLease:
    def __init__(self, path: Path, block: int = BLOCK) -> None:
        self._path = path
        self._block = block
        self._top = self.floor()

    def floor(self) -> int:
        """The highest seq the node may have used (0 when the file is missing or unreadable)."""
        try:
            return int(self._path.read_text(encoding="ascii").strip())
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            log.warning("cannot read the seq lease %s (%s): relying on the outbox alone", self._path, exc)
            return 0

    def cover(self, seq: int) -> None:
        """Make sure the file says at least `seq` before that seq is committed; raises OSError
        (ENOSPC on a full disk) when the file cannot be written."""
        if seq <= self._top:
            return
        top = seq + self._block - 1
        tmp = self._path.with_name(self._path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, f"{top}\n".encode("ascii"))
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
        os.close(fd)
        os.replace(tmp, self._path)
        dir_fd = os.open(self._path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself must survive a power cut
        finally:
            os.close(dir_fd)
        self._top = top
