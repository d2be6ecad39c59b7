"""What the outbox does with a damaged file: keep it aside as `<name>.corrupt-<UTC time>` for an
operator, and read from it every reading SQLite can still reach, so the node starts a fresh outbox
instead of failing at every start (a permanent restart loop under systemd).

Reading goes around the damage: a file whose header is overwritten ("file is not a database") is
read through a copy with a standard header; a scan that meets a damaged page jumps ahead by
doubling steps of `seq` until it reads again, so the readings after the hole are kept too.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

_DAMAGE_CODES = {sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB}
_SIDE_FILES = ("-wal", "-shm", "-journal")
_NOT_KEPT = (*_SIDE_FILES, ".repair", ".repair-template")  # ours, left by a power cut mid-read


class Damaged(sqlite3.DatabaseError):
    """The file opened, but SQLite's own check found it damaged (pages missing or garbled)."""


def is_damage(exc: BaseException) -> bool:
    """True for a damaged file (keep it aside and start afresh), false for anything else (a full
    disk, permissions, a locked file), which must not cost the readings."""
    if isinstance(exc, Damaged):
        return True
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.DatabaseError) and code is not None and code & 0xFF in _DAMAGE_CODES


def set_aside(path: Path, at: datetime) -> Path:
    """Rename the damaged file (and its WAL, which may hold its newest readings) out of the way."""
    kept = path.with_name(f"{path.name}.corrupt-{at:%Y%m%dT%H%M%SZ}")
    n = 1
    while kept.exists():
        n += 1
        kept = path.with_name(f"{path.name}.corrupt-{at:%Y%m%dT%H%M%SZ}-{n}")
    os.replace(path, kept)
    wal = path.with_name(path.name + "-wal")
    if wal.exists():
        os.replace(wal, kept.with_name(kept.name + "-wal"))
    with contextlib.suppress(FileNotFoundError):
        path.with_name(path.name + "-shm").unlink()  # rebuilt from the WAL when it is read
    return kept


def kept_files(path: Path) -> list[Path]:
    """Damaged outboxes still kept beside `path`, oldest first (the timestamp sorts as time does)."""
    return sorted(p for p in path.parent.glob(f"{path.name}.corrupt-*") if not p.name.endswith(_NOT_KEPT))


@dataclass
class Salvaged:
    last_seq: int = 0
    dropped: int = 0
    last_ts: str | None = None


@contextlib.contextmanager
def open_kept(kept: Path) -> Iterator[sqlite3.Connection | None]:
    """A connection reading the kept file, or through a copy with a standard header when its own is
    gone; None when neither can be read at all. The kept file itself is never written."""
    repair = kept.with_name(kept.name + ".repair")
    try:
        db = _readable(kept)
        if db is None:
            _copy_with_header(kept, repair)
            db = _readable(repair)
        yield db
        if db is not None:
            db.close()
    finally:
        for p in (repair, *(repair.with_name(repair.name + s) for s in _SIDE_FILES)):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


def _readable(path: Path) -> sqlite3.Connection | None:
    # Read-only: such a connection reads the WAL too but never checkpoints it into the file.
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, isolation_level=None)
    try:
        db.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError:
        db.close()
        return None
    return db


def _copy_with_header(kept: Path, repair: Path) -> None:
    """Copy the file under a fresh database's first 100 bytes: magic, page size, format numbers.

    The page count (bytes 28-31) is zeroed so SQLite takes it from the file's size; the freelist
    and schema cookie are the fresh file's, which only costs the freelist, never a reading."""
    with contextlib.suppress(FileNotFoundError):
        repair.unlink()
    fresh = repair.with_name(repair.name + "-template")
    try:
        db = sqlite3.connect(fresh)
        db.execute("CREATE TABLE t (x)")
        db.commit()
        db.close()
        header = bytearray(fresh.read_bytes()[:100])
    finally:
        with contextlib.suppress(FileNotFoundError):
            fresh.unlink()
    header[28:32] = bytes(4)
    shutil.copyfile(kept, repair)
    wal = kept.with_name(kept.name + "-wal")
    if wal.exists():
        shutil.copyfile(wal, repair.with_name(repair.name + "-wal"))
    with open(repair, "r+b") as f:
        f.write(header)


def read_meta(db: sqlite3.Connection) -> Salvaged:
    """`last_seq`, `dropped` and `last_ts` from the kept file, each as far as it can be read."""
    found = Salvaged()
    for key in ("last_seq", "dropped", "last_ts"):
        with contextlib.suppress(sqlite3.DatabaseError, TypeError, ValueError):
            row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            if row is not None and key == "last_ts":
                found.last_ts = str(row[0])
            elif row is not None:
                setattr(found, key, max(0, int(row[0])))
    return found


def readable_rows(db: sqlite3.Connection) -> Iterator[tuple[int, str, bytes]]:
    """Every row SQLite can still read, in `seq` order, stepping over damaged pages."""
    after = 0
    while True:
        try:
            for seq, ts, payload in db.execute(
                "SELECT seq, ts, payload FROM outbox WHERE seq > ? ORDER BY seq", (after,)
            ):
                after = int(seq)
                if isinstance(ts, str) and isinstance(payload, bytes):
                    yield after, ts, payload
            return
        except sqlite3.DatabaseError:
            resumed = _past_the_hole(db, after)
            if resumed is None:
                return
            after = resumed


def _past_the_hole(db: sqlite3.Connection, after: int) -> int | None:
    """The first `after + 2**k` from which a read works again; None when nothing more is readable."""
    step = 1
    while step < 2**62:
        try:
            query = "SELECT seq FROM outbox WHERE seq > ? ORDER BY seq LIMIT 1"
            row = db.execute(query, (after + step,)).fetchone()
        except sqlite3.DatabaseError:
            step *= 2
            continue
        return None if row is None else after + step
    return None
