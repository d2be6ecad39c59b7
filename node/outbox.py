"""The node's SQLite outbox: every reading is committed here, with its `seq`, before it is published,
and deleted only when the broker has acknowledged it.

`seq` is allocated in the same transaction as the insert, so a restart never reuses or skips a
number, and a power cut at any instant leaves either the whole reading or none of it (WAL,
synchronous=FULL for appends). Deletions after a PUBACK are committed without waiting for the disk:
losing one in a power cut only means that reading is sent again, which the gateway absorbs.

The outbox is bounded by a row count and by the free space left on its file system. When either
limit is reached the oldest readings are deleted in the same transaction as the new one, and the
running total of dropped readings is kept in the database, so the loss is reported for the node's
whole life and never silent. The file is owned by the node's main thread; paho's thread never
touches it.

A card can still fill to the last byte (another program writing fast), and then SQLite cannot even
delete: a deletion is written to the WAL too, and the WAL's pages are copied into the file at a
checkpoint, which may need the file to grow. So the outbox keeps `<name>.reserve`, a few MB of its
own, and answers "database or disk is full" by checkpointing, then releasing the reserve, dropping
more of the oldest readings at each try; it makes the reserve again once there is room. Should all
that fail, the reading is lost but counted (`OutboxFull`), and the node carries on.

A damaged file (`file is not a database`, pages missing) is kept aside as `<name>.corrupt-<time>`
and the readable readings are moved to a fresh outbox (node/outbox_salvage.py), whose `seq`
continues above every seq the node ever used (node/seqlease.py).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from contract.clock import Clock, utc_now
from node.outbox_salvage import Damaged, is_damage, kept_files, open_kept, read_meta, readable_rows, set_aside
from node.seqlease import SeqLease

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, payload BLOB NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('last_seq', 0);
INSERT OR IGNORE INTO meta (key, value) VALUES ('dropped', 0);
"""

DROP_LOG_EVERY_S = 3600.0
"""While the outbox keeps overflowing, repeat the warning at most this often (with the running count)."""

RESERVE_BYTES = 2 * 1024 * 1024
"""The outbox's own reserve on its file system, released when the disk is full: more than the WAL
can hold between two checkpoints (`_WAL_PAGES`), which a checkpoint may need to copy into the file."""

_WAL_PAGES = 250  # ~1 MB of WAL at 4 KiB pages before SQLite checkpoints it (SQLite's default: 1000)
_FULL_TRIES = 4  # the first try, then checkpoint, release the reserve, drop 4x more each time

FreeBytes = Callable[[Path], int]


class OutboxFull(OSError):
    """The disk is full and nothing the outbox can free made room: this reading is lost and counted
    in `dropped`; carry on measuring, the next one may fit."""


def disk_free_bytes(path: Path) -> int:
    return int(shutil.disk_usage(path).free)


class Outbox:
    def __init__(
        self,
        path: Path,
        *,
        max_readings: int = 0,
        min_free_bytes: int = 0,
        free_bytes: FreeBytes = disk_free_bytes,
        durable: bool = True,
        monotonic: Callable[[], float] = time.monotonic,
        max_file_bytes: int = 0,
        reserve_bytes: int = RESERVE_BYTES,
        clock: Clock = utc_now,
    ) -> None:
        """`max_readings` 0 means no row limit; `free_bytes` is injectable so a low disk can be
        simulated; `durable=False` skips fsync on appends (only for filling benchmarks);
        `max_file_bytes` caps the database file, which SQLite then reports exactly as a full disk;
        `reserve_bytes` 0 keeps no reserve; `clock` names a damaged file kept aside."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self._path = path
        self._max_readings = max_readings
        self._min_free_bytes = min_free_bytes
        self._free_bytes = free_bytes
        self._monotonic = monotonic
        self._append_sync = "FULL" if durable else "OFF"
        self._reserve = path.with_name(path.name + ".reserve")
        self._reserve_bytes = reserve_bytes
        self._lease = SeqLease(path.with_name(path.name + ".seq"))
        self._unsaved = 0  # readings lost to a full disk since the last commit, not yet in 'dropped'
        self._last_drop_log: float | None = None
        self._dropped_since_log = 0
        try:
            self._db = self._open_full_or_not()
        except sqlite3.DatabaseError as exc:
            if not is_damage(exc):
                raise
            self._db = self._replace_damaged(exc, clock)
        if max_file_bytes:
            (page,) = self._db.execute("PRAGMA page_size").fetchone()
            self._db.execute(f"PRAGMA max_page_count = {max(1, max_file_bytes // int(page))}")
        (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        self._depth = int(count)
        # The newest damaged outbox kept beside this one: reported until an operator removes it.
        kept = kept_files(path)
        self.recovered_from = kept[-1].name if kept else None
        with contextlib.suppress(OSError):  # a full disk: the next append tries again
            self._lease.cover(self.last_seq())
        self._keep_reserve()

    def _open_full_or_not(self) -> sqlite3.Connection:
        """Open, releasing the reserve when the disk is too full even for SQLite's shared memory."""
        try:
            return self._open()
        except sqlite3.OperationalError as exc:
            # A full disk shows here as "disk I/O error" too: SQLite could not size its -shm file.
            code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
            if code not in (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR) or not self._release_reserve():
                raise
            return self._open()

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self._path, isolation_level=None, timeout=30)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA wal_autocheckpoint={_WAL_PAGES}")
            # Reads every page once: a file with pages missing must be found now, not by a crash
            # in the middle of a replay (which would repeat at every start).
            (check,) = db.execute("PRAGMA quick_check(1)").fetchone()
            if check != "ok":
                raise Damaged(str(check))
            db.executescript(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _replace_damaged(self, exc: sqlite3.DatabaseError, clock: Clock) -> sqlite3.Connection:
        """Keep the damaged file aside, start a fresh one above every seq used, move over what reads."""
        kept = set_aside(self._path, clock())
        db = self._open()
        with open_kept(kept) as old:
            found = read_meta(old) if old is not None else None
            recovered, top_row = 0, 0
            batch: list[tuple[int, str, bytes]] = []
            for row in readable_rows(old) if old is not None else ():
                batch.append(row)
                if len(batch) >= 1000:
                    recovered, top_row = recovered + len(batch), row[0]
                    _insert(db, batch)
                    batch = []
            if batch:
                recovered, top_row = recovered + len(batch), batch[-1][0]
                _insert(db, batch)
        last_seq = max(self._lease.floor(), found.last_seq if found else 0, top_row)
        db.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (last_seq,))
        db.execute("UPDATE meta SET value = ? WHERE key = 'dropped'", (found.dropped if found else 0,))
        if found and found.last_ts:
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_ts', ?)", (found.last_ts,))
        log.error(
            "outbox %s is damaged (%s): kept as %s for recovery; %d reading(s) recovered from it; the"
            " fresh outbox continues after seq=%d",
            self._path,
            exc,
            kept.name,
            recovered,
            last_seq,
        )
        return db

    def append(self, ts: str, build: Callable[[int], bytes]) -> int:
        """Allocate the next seq, build the payload for it and commit both, dropping the oldest
        readings first when the outbox is full; returns the seq."""
        make_room = 0
        for attempt in range(_FULL_TRIES):
            try:
                seq = self._append(ts, build, make_room)
            except (sqlite3.OperationalError, OSError) as exc:
                if not _is_full(exc):
                    raise
                # The disk filled faster than min_free_bytes could see (another program's logs).
                # Let the WAL start over (a checkpoint), then use the reserve, and drop the oldest
                # hundredth of the backlog (at least 16 readings, a few pages' worth), 4x more at
                # each try: SQLite reuses the freed pages for the new reading.
                self._checkpoint()
                if attempt >= 1 and self._release_reserve():
                    self._checkpoint()
                make_room = max(16, self._depth // 100) * 4**attempt
                last_error: BaseException = exc
            else:
                self._keep_reserve()
                return seq
        self._unsaved += 1
        message = f"disk full and nothing left to free: the reading at {ts} is lost (counted)"
        raise OutboxFull(errno.ENOSPC, message) from last_error

    def _append(self, ts: str, build: Callable[[int], bytes], make_room: int) -> int:
        # Without its reserve (used up by a full disk, or no room to make it) the outbox does not
        # grow either: the reserve's room is kept for the checkpoints that have to grow the file.
        over_disk = (
            self._min_free_bytes > 0 and self._free_bytes(self._path.parent) < self._min_free_bytes
        ) or (self._reserve_bytes > 0 and not self._reserve.exists())
        self._db.execute(f"PRAGMA synchronous={self._append_sync}")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            (last,) = self._db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
            seq = int(last) + 1
            excess = make_room
            if self._max_readings and self._depth + 1 > self._max_readings:
                excess = max(excess, self._depth + 1 - self._max_readings)
            if over_disk and self._depth > 0:
                # Deleting one row per new row keeps the file from growing: SQLite reuses the pages.
                excess = max(excess, 1)
            dropped = self._drop_oldest(excess) if excess else []
            if self._unsaved:
                self._db.execute("UPDATE meta SET value = value + ? WHERE key = 'dropped'", (self._unsaved,))
            self._db.execute("INSERT INTO outbox (seq, ts, payload) VALUES (?, ?, ?)", (seq, ts, build(seq)))
            self._lease.cover(seq)
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (seq,))
            self._db.execute(
                "INSERT INTO meta (key, value) VALUES ('last_ts', ?)"
                " ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                (ts,),
            )
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._unsaved = 0
        self._depth += 1 - len(dropped)
        if dropped:
            reason = "disk full" if make_room else "disk space" if over_disk else "max_readings"
            self._log_drop(dropped, reason)
        return seq

    def _checkpoint(self) -> None:
        """Copy the WAL into the file so that the next transaction writes the WAL from its start."""
        with contextlib.suppress(sqlite3.DatabaseError):  # too full even for that: the reserve is next
            self._db.execute("PRAGMA wal_checkpoint(RESTART)").fetchall()

    def _release_reserve(self) -> bool:
        try:
            self._reserve.unlink()
        except FileNotFoundError:
            return False
        log.warning("disk full: released the outbox's reserve %s", self._reserve)
        return True

    def _keep_reserve(self) -> None:
        """Make the reserve when it is missing and the disk has room for it and the floor."""
        if not self._reserve_bytes or self._reserve.exists():
            return
        try:
            if self._free_bytes(self._path.parent) < 2 * self._reserve_bytes + self._min_free_bytes:
                return
            fd = os.open(self._reserve, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError:
            return
        try:
            os.posix_fallocate(fd, 0, self._reserve_bytes)  # real blocks: a sparse file frees nothing
        except OSError:
            os.close(fd)
            self._reserve.unlink()
            return
        os.close(fd)

    def _drop_oldest(self, count: int) -> list[int]:
        rows = self._db.execute("SELECT seq FROM outbox ORDER BY seq LIMIT ?", (count,)).fetchall()
        seqs = [int(s) for (s,) in rows]
        if seqs:
            self._db.execute("DELETE FROM outbox WHERE seq <= ?", (seqs[-1],))
            self._db.execute("UPDATE meta SET value = value + ? WHERE key = 'dropped'", (len(seqs),))
        return seqs

    def _log_drop(self, seqs: list[int], reason: str) -> None:
        """Once when an overflow starts, then at most hourly: never silent, never a flood."""
        self._dropped_since_log += len(seqs)
        now = self._monotonic()
        if self._last_drop_log is None or now - self._last_drop_log >= DROP_LOG_EVERY_S:
            log.warning(
                "outbox full (%s): dropped the oldest readings up to seq=%d; %d dropped since the last"
                " warning, %d in total",
                reason,
                seqs[-1],
                self._dropped_since_log,
                self.dropped(),
            )
            self._last_drop_log, self._dropped_since_log = now, 0

    def pending(self, after_seq: int = 0, limit: int = 100) -> list[tuple[int, bytes]]:
        """Oldest first, so a backlog replays in order."""
        rows = self._db.execute(
            "SELECT seq, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        ).fetchall()
        return [(int(seq), bytes(payload)) for seq, payload in rows]

    def remove(self, seqs: list[int]) -> None:
        """Delete acknowledged readings in one transaction, without waiting for the disk."""
        if not seqs:
            return
        try:
            self._remove(seqs)
        except sqlite3.OperationalError as exc:
            if not _is_full(exc):
                raise
            self._checkpoint()  # a deletion needs room in the WAL too
            try:
                self._remove(seqs)
            except sqlite3.OperationalError as again:
                if not _is_full(again):
                    raise
                # They stay and are sent again after a restart (the gateway keeps one of each), or
                # leave as the oldest when the next reading makes room.
                log.warning("disk full: %d acknowledged reading(s) stay in the outbox for now", len(seqs))

    def _remove(self, seqs: list[int]) -> None:
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("BEGIN IMMEDIATE")
        try:
            before = self._db.total_changes
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])
            removed = self._db.total_changes - before
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise
        self._depth -= removed

    def depth(self) -> int:
        return self._depth

    def oldest_ts(self) -> str | None:
        row = self._db.execute("SELECT ts FROM outbox ORDER BY seq LIMIT 1").fetchone()
        return None if row is None else str(row[0])

    def last_seq(self) -> int:
        (last,) = self._db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
        return int(last)

    def dropped(self) -> int:
        """Readings dropped because the outbox was full, over the node's whole life."""
        (count,) = self._db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        return int(count) + self._unsaved

    def last_ts(self) -> str | None:
        """The latest `ts` ever committed (kept after the reading is sent), to detect a clock that
        went backwards, across restarts too. RFC 3339 in our fixed-width form sorts as time does."""
        row = self._db.execute("SELECT value FROM meta WHERE key = 'last_ts'").fetchone()
        return None if row is None else str(row[0])

    def close(self) -> None:
        self._db.close()


def _is_full(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.Error):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def _insert(db: sqlite3.Connection, rows: list[tuple[int, str, bytes]]) -> None:
    db.execute("BEGIN IMMEDIATE")
    db.executemany("INSERT OR IGNORE INTO outbox (seq, ts, payload) VALUES (?, ?, ?)", rows)
    db.execute("COMMIT")
