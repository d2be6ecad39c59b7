"""The forwarder's durable outbox: what the hub has not acknowledged yet (SQLite, WAL).

Live readings (handed over as they are stored) and backfill (read back from InfluxDB, oldest
first) wait in one table; a batch takes live ones first and fills up with backfill, so a site
back after a week offline drains its past without holding up what it measures now. A batch is
marked with its id when sent and deleted when the hub's ack for that id arrives; a batch not
acknowledged in time is sent again under a new id (the hub stores each reading once anyway).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS item (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    live INTEGER NOT NULL,
    kind TEXT NOT NULL DEFAULT 'reading',  -- stored (a reading and its stored time) | status | alert
                                           -- | visit | observation (field records);
                                           -- reading: a bare reading, from an earlier version
    body BLOB NOT NULL,
    batch INTEGER,
    sent_at REAL
);
CREATE INDEX IF NOT EXISTS item_unsent ON item (batch, live, id);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- The field records queued for the hub, by name (a visit's node, kind and time; an observation's
-- id) with the digest of what was queued: a record is queued again only when it changed (a new
-- decision on an observation).
CREATE TABLE IF NOT EXISTS field_seen (key TEXT PRIMARY KEY, digest TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class Batch:
    id: int
    bodies: list[tuple[str, bytes]]  # (kind, body)


class Outbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        # One connection per thread that writes (the loop; the alert route's worker): a writer
        # waits for the other's transaction rather than failing at once.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an outbox that forgets on power loss is none
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def add(
        self,
        bodies: Iterable[bytes],
        *,
        live: bool,
        kind: str = "reading",
        state: dict[str, str] | None = None,
        seen: dict[str, str] | None = None,
    ) -> None:
        """Keep bodies (and, in the same transaction, state such as the backfill cursor, and the
        digests of the field records they hold)."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT INTO item (live, kind, body) VALUES (?, ?, ?)", ((int(live), kind, b) for b in bodies)
            )
            for key, value in (state or {}).items():
                self._db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))
            self._db.executemany(
                "INSERT OR REPLACE INTO field_seen (key, digest) VALUES (?, ?)", (seen or {}).items()
            )

    def field_seen(self) -> dict[str, str]:
        """The digest of each field record queued so far, by name."""
        return {str(k): str(d) for k, d in self._db.execute("SELECT key, digest FROM field_seen")}

    def take(self, max_items: int, now: float) -> Batch | None:
        """The next batch to send: unsent items, live first, oldest first."""
        # A read first: the forwarder asks every tick, and an idle tick is then no write
        # transaction (no fsync with synchronous=FULL, no wait for the alert route's writes).
        if self._db.execute("SELECT 1 FROM item WHERE batch IS NULL LIMIT 1").fetchone() is None:
            return None
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            rows = self._db.execute(
                "SELECT id, kind, body FROM item WHERE batch IS NULL ORDER BY live DESC, id LIMIT ?",
                (max_items,),
            ).fetchall()
            if not rows:
                return None
            batch = self._next_batch_id()
            self._db.executemany(
                "UPDATE item SET batch = ?, sent_at = ? WHERE id = ?", ((batch, now, r[0]) for r in rows)
            )
        return Batch(batch, [(r[1], r[2]) for r in rows])

    def acked(self, batch: int) -> int:
        with self._db:
            return self._db.execute("DELETE FROM item WHERE batch = ?", (batch,)).rowcount

    def expire(self, older_than: float) -> int:
        """Batches sent before `older_than` and never acknowledged go back to be sent again."""
        due = "SELECT 1 FROM item WHERE batch IS NOT NULL AND sent_at < ? LIMIT 1"
        if self._db.execute(due, (older_than,)).fetchone() is None:
            return 0  # as in `take`: nothing to do is a read, not a write
        with self._db:
            return self._db.execute(
                "UPDATE item SET batch = NULL, sent_at = NULL WHERE batch IS NOT NULL AND sent_at < ?",
                (older_than,),
            ).rowcount

    def in_flight(self) -> int:
        row = self._db.execute("SELECT count(DISTINCT batch) FROM item WHERE batch IS NOT NULL").fetchone()
        return int(row[0])

    def pending(self, *, live: bool | None = None) -> int:
        if live is None:
            row = self._db.execute("SELECT count(*) FROM item").fetchone()
        else:
            row = self._db.execute("SELECT count(*) FROM item WHERE live = ?", (int(live),)).fetchone()
        return int(row[0])

    def get(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def put(self, key: str, value: str) -> None:
        with self._db:
            self._db.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))

    def _next_batch_id(self) -> int:
        row = self._db.execute("SELECT value FROM state WHERE key = 'batch'").fetchone()
        batch = int(row[0]) + 1 if row else 1
        self._db.execute("INSERT OR REPLACE INTO state (key, value) VALUES ('batch', ?)", (str(batch),))
        return batch
