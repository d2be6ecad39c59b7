"""The spool: readings the gateway has accepted but InfluxDB could not take yet.

When InfluxDB is unreachable, too slow or answers 5xx, a batch goes into this SQLite file (WAL,
synchronous=FULL) and its messages are acknowledged to the broker: from then on the gateway, not the
broker, is responsible for them, and a kill -9 at any instant leaves each batch either wholly in the
spool or not acknowledged. `SpoolDrain` writes the spool to InfluxDB oldest first, with backoff, on
its own thread. While anything is spooled, new batches are spooled behind it, so readings reach the
database in the order they arrived.

The spool is bounded: `max_bytes`, and never closer than `min_free_bytes` to a full disk. A loud
warning is logged (and shown in the gateway status) from `warn_fraction` of the bound; at the bound,
`append` raises `SpoolFull` and the gateway stops acknowledging, which leaves the messages queued at
the broker (back-pressure) instead of losing them.
"""

from __future__ import annotations

import logging
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gateway.deadletter import DeadLetters, Reject
from gateway.stores.base import Store, StoreError, write_sifting

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,        -- unix time it was spooled
    line TEXT NOT NULL,      -- line protocol, exactly what a direct write would have sent
    topic TEXT NOT NULL,     -- the original message, for the dead-letter store if InfluxDB refuses it
    payload BLOB NOT NULL
);
"""


class SpoolFull(StoreError):
    """The spool is at its bound or the disk nearly full: do not acknowledge; retry later."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


@dataclass(frozen=True, slots=True)
class Entry:
    line: str
    topic: str
    payload: bytes


@dataclass(frozen=True, slots=True)
class SpooledEntry:
    id: int
    at: float
    line: str
    topic: str
    payload: bytes


class Spool:
    """Thread-safe: the ingest loop appends, the drain reads and removes."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int = 1024**3,
        warn_fraction: float = 0.5,
        min_free_bytes: int = 100 * 1024**2,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_bytes = max_bytes
        self._warn_bytes = int(max_bytes * warn_fraction)
        self._min_free = min_free_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        # incremental auto-vacuum lets an emptied spool give its pages back to the disk
        self._db.execute("PRAGMA auto_vacuum=INCREMENTAL")
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._page_size = int(self._db.execute("PRAGMA page_size").fetchone()[0])
        self._depth = int(self._db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])
        self._last_warning = -1e9
        self.changed = threading.Event()  # set on every append, so the drain wakes at once

    @property
    def depth(self) -> int:
        """Readings waiting for InfluxDB."""
        return self._depth

    def used_bytes(self) -> int:
        with self._lock:
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
            free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return int(pages - free) * self._page_size

    @property
    def is_warning(self) -> bool:
        return self._depth > 0 and self.used_bytes() >= self._warn_bytes

    def append(self, entries: list[Entry]) -> None:
        """Commit `entries` durably, or raise SpoolFull (or StoreError for a disk error)."""
        if not entries:
            return
        used = self.used_bytes()
        incoming = sum(len(e.line) + len(e.topic) + len(e.payload) + 32 for e in entries)
        if used + incoming > self.max_bytes:
            raise SpoolFull(f"spool {self.path} is full ({used} of {self.max_bytes} bytes)")
        free = shutil.disk_usage(self.path.parent).free
        if free - incoming < self._min_free:
            raise SpoolFull(f"disk of {self.path} has only {free} bytes free")
        self._warn(used + incoming, free)
        at = time.time()
        rows = [(at, e.line, e.topic, e.payload) for e in entries]
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT INTO spool (at, line, topic, payload) VALUES (?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StoreError(f"cannot write the spool {self.path}: {exc}", retryable=True) from exc
            self._depth += len(rows)
        self.changed.set()

    def _warn(self, used: int, free: int) -> None:
        if used < self._warn_bytes:
            return
        now = time.monotonic()
        if now - self._last_warning >= 60:  # loud, but once a minute
            self._last_warning = now
            log.error(
                "SPOOL FILLING: %d readings, %.0f MB of %.0f MB (disk free: %.0f MB). InfluxDB has not "
                "taken writes for a while: check it, or the gateway will stop acknowledging and the "
                "broker will hold the readings",
                self._depth,
                used / 1e6,
                self.max_bytes / 1e6,
                free / 1e6,
            )

    def oldest(self, limit: int) -> list[SpooledEntry]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, at, line, topic, payload FROM spool ORDER BY id LIMIT ?", (limit,)
            ).fetchall()
        return [SpooledEntry(int(i), float(a), str(line), str(t), bytes(p)) for i, a, line, t, p in rows]

    def remove_through(self, last_id: int, count: int) -> None:
        """Delete everything up to `last_id` (the `count` entries just written)."""
        with self._lock:
            self._db.execute("DELETE FROM spool WHERE id <= ?", (last_id,))
            self._depth = max(self._depth - count, 0)
            if self._depth == 0:
                self._db.execute("PRAGMA incremental_vacuum")

    def close(self) -> None:
        with self._lock:
            self._db.close()


class SpoolDrain:
    """Writes the spool to InfluxDB, oldest first, on its own thread, with backoff on failure."""

    def __init__(
        self,
        spool: Spool,
        store: Store,
        dead: DeadLetters,
        *,
        batch_size: int = 1000,
        retry_min_s: float = 0.5,
        retry_max_s: float = 30.0,
        on_result: Callable[[bool], None] | None = None,
    ) -> None:
        self._spool = spool
        self._store = store
        self._dead = dead
        self._batch_size = batch_size
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._on_result = on_result
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="spool-drain", daemon=True)
        self.written = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        self._spool.changed.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        backoff = 0.0
        while not self._stop.is_set():
            if self._spool.depth == 0:
                self._spool.changed.wait(1.0)
                self._spool.changed.clear()
                continue
            try:
                self.drain_once()
            except StoreError as exc:
                if self._on_result:
                    self._on_result(False)
                backoff = min(max(backoff * 2, self._retry_min_s), self._retry_max_s)
                log.warning(
                    "spool: InfluxDB write failed (%s); %d readings wait; retrying in %.1f s",
                    exc,
                    self._spool.depth,
                    backoff,
                )
                self._stop.wait(backoff)
            except Exception:  # a bug here must not silently stop the drain forever
                log.exception("spool drain failed; retrying")
                self._stop.wait(self._retry_max_s)
            else:
                backoff = 0.0

    def drain_once(self) -> int:
        """Write the oldest spooled batch; returns how many readings left the spool."""
        entries = self._spool.oldest(self._batch_size)
        if not entries:
            return 0
        refused = write_sifting(self._store, [e.line for e in entries])
        if self._on_result:
            self._on_result(True)
        if refused:
            self._dead.add(
                [
                    Reject(time.time(), entries[i].topic, entries[i].payload, "store_refused", str(exc))
                    for i, exc in refused
                ]
            )
        self._spool.remove_through(entries[-1].id, len(entries))
        self.written += len(entries) - len(refused)
        if self._spool.depth == 0:
            log.info("spool drained: InfluxDB has every spooled reading")
        return len(entries)
