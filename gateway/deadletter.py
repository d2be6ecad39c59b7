"""The dead-letter store: every message the gateway refuses, kept verbatim with its reason.

One SQLite file under the gateway's data directory (WAL, synchronous=FULL). A refused message is
acknowledged to the broker only after its row is committed, like a stored reading, so a crash loses
no evidence. The store is bounded (rows and bytes): when it is over a bound, the oldest bodies are
dropped but the per-reason counts are kept, so a flood of garbage can exhaust neither memory nor disk
and still shows up, counted, in `minewatch-gateway rejects` and the gateway status.
"""

from __future__ import annotations

import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS rejects (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,            -- unix time the gateway refused it
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,       -- verbatim, or its first max_payload_bytes when truncated
    size INTEGER NOT NULL,       -- the payload's real length in bytes
    reason TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rejects_at ON rejects (at);
CREATE TABLE IF NOT EXISTS counts (
    reason TEXT PRIMARY KEY,
    total INTEGER NOT NULL,      -- every reject ever, kept when bodies are dropped
    dropped INTEGER NOT NULL     -- bodies dropped to stay within bounds
);
"""


@dataclass(frozen=True, slots=True)
class Reject:
    at: float
    topic: str
    payload: bytes
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class KeptReject:
    id: int
    at: float
    topic: str
    payload: bytes
    size: int
    reason: str
    detail: str

    @property
    def is_truncated(self) -> bool:
        return len(self.payload) < self.size


class DeadLetters:
    """Thread-safe: the ingest loop and the spool's drain both refuse messages."""

    def __init__(
        self,
        path: Path,
        *,
        max_rows: int = 100_000,
        max_bytes: int = 64 * 1024 * 1024,
        max_payload_bytes: int = 65_536,
    ) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._max_rows = max_rows
        self._max_bytes = max_bytes
        self._max_payload = max_payload_bytes
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload) + LENGTH(topic)), 0) FROM rejects"
        )
        self._rows, self._bytes = (int(v) for v in row.fetchone())
        self._totals = {r: int(n) for r, n, _ in self._db.execute("SELECT * FROM counts")}

    def add(self, rejects: list[Reject]) -> None:
        """Commit a batch of refused messages (one transaction), then trim to the bounds."""
        if not rejects:
            return
        rows = []
        for r in rejects:
            body = r.payload[: self._max_payload]
            rows.append((r.at, r.topic[:4096], body, len(r.payload), r.reason, r.detail[:1000]))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "INSERT INTO rejects (at, topic, payload, size, reason, detail)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    rows,
                )
                per_reason: dict[str, int] = {}
                for r in rejects:
                    per_reason[r.reason] = per_reason.get(r.reason, 0) + 1
                self._db.executemany(
                    "INSERT INTO counts (reason, total, dropped) VALUES (?, ?, 0) "
                    "ON CONFLICT (reason) DO UPDATE SET total = total + excluded.total",
                    list(per_reason.items()),
                )
                added = sum(len(row[1]) + len(row[2]) for row in rows)
                self._rows += len(rows)
                self._bytes += added
                self._trim()
            except BaseException:
                self._db.execute("ROLLBACK")
                self._reload()
                raise
            self._db.execute("COMMIT")
            for reason, n in per_reason.items():
                self._totals[reason] = self._totals.get(reason, 0) + n

    def _trim(self) -> None:
        """Drop the oldest bodies until within bounds; their counts stay in `counts`.

        Each trim frees what is over a bound plus a tenth of that bound, so a flood does not trim on
        every batch; a tenth of the *row* bound when only bytes were over dropped nearly everything
        (found by a test audit: 1 of 101 rows kept under a 200 KB bound)."""
        rows_over, bytes_over = self._rows - self._max_rows, self._bytes - self._max_bytes
        if rows_over <= 0 and bytes_over <= 0:
            return
        free_rows = rows_over + self._max_rows // 10 if rows_over > 0 else 0
        free_bytes = bytes_over + self._max_bytes // 10 if bytes_over > 0 else 0
        victims: list[tuple[int, str, int]] = []
        freed_bytes = 0
        rows = self._db.execute("SELECT id, reason, LENGTH(payload) + LENGTH(topic) FROM rejects ORDER BY id")
        for rid, reason, size in rows:
            if len(victims) >= free_rows and freed_bytes >= free_bytes:
                break
            victims.append((int(rid), str(reason), int(size)))
            freed_bytes += int(size)
        rows.close()
        if not victims:
            return
        dropped: dict[str, int] = {}
        for _, reason, _size in victims:
            dropped[reason] = dropped.get(reason, 0) + 1
        self._db.execute("DELETE FROM rejects WHERE id <= ?", (victims[-1][0],))
        self._db.executemany(
            "UPDATE counts SET dropped = dropped + ? WHERE reason = ?",
            [(k, r) for r, k in dropped.items()],
        )
        self._rows -= len(victims)
        self._bytes -= freed_bytes

    def _reload(self) -> None:
        row = self._db.execute(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload) + LENGTH(topic)), 0) FROM rejects"
        )
        self._rows, self._bytes = (int(v) for v in row.fetchone())

    def totals(self) -> dict[str, int]:
        """Rejects per reason since the store was created (including dropped bodies)."""
        with self._lock:
            return dict(self._totals)

    def counts(self) -> dict[str, tuple[int, int]]:
        """reason -> (total, bodies dropped)."""
        with self._lock:
            return {
                r: (int(t), int(d)) for r, t, d in self._db.execute("SELECT * FROM counts ORDER BY reason")
            }

    def list(
        self, since: float | None = None, reason: str | None = None, limit: int = 100
    ) -> list[KeptReject]:
        """Kept rejects, newest last; `since` is unix time."""
        sql = "SELECT id, at, topic, payload, size, reason, detail FROM rejects WHERE at >= ?"
        args: list[object] = [since if since is not None else 0.0]
        if reason:
            sql += " AND reason = ?"
            args.append(reason)
        sql += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [
            KeptReject(int(i), float(a), t, bytes(p), int(s), r, d) for i, a, t, p, s, r, d in reversed(rows)
        ]

    def close(self) -> None:
        with self._lock:
            self._db.close()
