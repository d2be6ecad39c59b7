"""The node's SQLite outbox: every reading is committed here, with its `seq`, before it is published,
and deleted only when the broker has acknowledged it.

`seq` is allocated in the same transaction as the insert, so a restart never reuses or skips a
number, and a power cut at any instant leaves either the whole reading or none of it (WAL,
synchronous=FULL). The file is owned by the node's main thread; paho's thread never touches it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, ts TEXT NOT NULL, payload BLOB NOT NULL);
INSERT OR IGNORE INTO meta (key, value) VALUES ('last_seq', 0);
"""


class Outbox:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def append(self, ts: str, build: Callable[[int], bytes]) -> int:
        """Allocate the next seq, build the payload for it and commit both; returns the seq."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            (last,) = self._db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
            seq = int(last) + 1
            self._db.execute("INSERT INTO outbox (seq, ts, payload) VALUES (?, ?, ?)", (seq, ts, build(seq)))
            self._db.execute("UPDATE meta SET value = ? WHERE key = 'last_seq'", (seq,))
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")
        return seq

    def pending(self, after_seq: int = 0, limit: int = 100) -> list[tuple[int, bytes]]:
        """Oldest first, so a backlog replays in order."""
        rows = self._db.execute(
            "SELECT seq, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after_seq, limit)
        ).fetchall()
        return [(int(seq), bytes(payload)) for seq, payload in rows]

    def remove(self, seqs: list[int]) -> None:
        if seqs:
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(s,) for s in seqs])

    def depth(self) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(count)

    def last_seq(self) -> int:
        (last,) = self._db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
        return int(last)

    def close(self) -> None:
        self._db.close()
