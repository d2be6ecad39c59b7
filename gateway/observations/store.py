"""Observer codes, and what is left of the observations kept here before they moved to InfluxDB.

The codes stay on the gateway in SQLite: they are secrets (only their hashes are kept), not a time
series. Each accepted submission is logged by its code and time (`submitted`) for the rate limit.
The observations and decisions themselves are in InfluxDB (gateway/observations/records.py); the
`observations` and `decisions` tables of a gateway that kept them here are only read, by
`observations migrate`, and never written or deleted, so a migration can be checked against them.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway.observations.records import KINDS, DecisionRecord, Observation

__all__ = ["KINDS", "DecisionRecord", "Observation", "ObservationStore", "RateLimited", "UnknownCode"]
STORE_FILE = "observations.sqlite"
"""In the gateway's data directory; photos in `photos/` beside it."""
RATE_PER_HOUR = 20
"""Submissions one observer code may make in an hour: enough for a busy afternoon, too few to flood."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS observers (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
  code_sha256 TEXT NOT NULL UNIQUE, created TEXT NOT NULL, revoked TEXT, revoked_by TEXT);
CREATE TABLE IF NOT EXISTS submitted (observer INTEGER NOT NULL, received TEXT NOT NULL,
  FOREIGN KEY (observer) REFERENCES observers (id));
"""
LEGACY = ("observations", "decisions")
"""The tables of observations and decisions kept here before 0.x (read by `observations migrate`)."""


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def code_hash(code: str) -> str:
    return hashlib.sha256(code.strip().encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Observer:
    id: int
    name: str
    created: datetime
    revoked: datetime | None
    revoked_by: str | None = None


class RateLimited(Exception):
    """The code made RATE_PER_HOUR submissions in the last hour."""


class UnknownCode(Exception):
    """No such code, or it was revoked."""


class ObservationStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")  # the CLI decides while the dashboard serves
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # observer codes

    def add_observer(self, name: str, now: datetime) -> tuple[Observer, str]:
        """A new code, shown once: only its hash is kept."""
        code = secrets.token_urlsafe(9)
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO observers (name, code_sha256, created) VALUES (?, ?, ?)",
                (name, code_hash(code), _iso(now)),
            )
        assert cur.lastrowid is not None
        return Observer(cur.lastrowid, name, now, None), code

    def revoke(self, observer_id: int, by: str, now: datetime) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE observers SET revoked = ?, revoked_by = ? WHERE id = ? AND revoked IS NULL",
                (_iso(now), by, observer_id),
            )
        return cur.rowcount == 1

    def observers(self) -> list[Observer]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, name, created, revoked, revoked_by FROM observers ORDER BY id"
            ).fetchall()
        return [Observer(int(i), str(n), _dt(c), _dt(r) if r else None, b) for i, n, c, r, b in rows]

    def observer_of(self, code: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM observers WHERE code_sha256 = ? AND revoked IS NULL", (code_hash(code),)
            ).fetchone()
        if row is None:
            raise UnknownCode("unknown or revoked observer code")
        return int(row[0])

    # the rate limit

    def claim(self, observer: int, now: datetime) -> int:
        """Take one of the code's RATE_PER_HOUR submissions of the last hour, or raise RateLimited:
        counted and taken in one transaction (BEGIN IMMEDIATE holds the file's write lock), so
        posts at the same moment, here or from another process, cannot pass the limit together.
        Returns the slot, to `release` when the submission is not stored after all."""
        since = _iso(now - timedelta(hours=1))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                (n,) = self._db.execute(
                    "SELECT count(*) FROM submitted WHERE observer = ? AND received > ?", (observer, since)
                ).fetchone()
                if int(n) >= RATE_PER_HOUR:
                    raise RateLimited(
                        f"at most {RATE_PER_HOUR} observations an hour from one code; try later"
                    )
                cur = self._db.execute("INSERT INTO submitted VALUES (?, ?)", (observer, _iso(now)))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        assert cur.lastrowid is not None
        return cur.lastrowid

    def release(self, slot: int) -> None:
        """Give a claimed submission back: it was refused, or was already received."""
        with self._lock:
            self._db.execute("DELETE FROM submitted WHERE rowid = ?", (slot,))

    # what was kept here before InfluxDB (read only)

    def legacy(self) -> list[tuple[Observation, list[DecisionRecord]]]:
        """The observations (and their decisions, oldest first) this file held before they were
        kept in InfluxDB; empty for a gateway that never kept them here."""
        with self._lock:
            names = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if not set(LEGACY) <= names:
                return []
            rows = self._db.execute("SELECT * FROM observations ORDER BY at, id").fetchall()
            decided = self._db.execute(
                "SELECT observation, decision, by, at, why FROM decisions ORDER BY id"
            ).fetchall()
        by_obs: dict[str, list[DecisionRecord]] = {}
        for o, d, b, a, w in decided:
            by_obs.setdefault(str(o), []).append(DecisionRecord(str(o), str(d), str(b), _dt(a), str(w)))
        out = []
        for r in rows:
            obs = Observation(
                id=str(r[0]),
                observer=f"code:{int(r[1])}",
                kind=str(r[2]),
                text=str(r[3]),
                at=_dt(r[4]),
                site=r[5],
                node=r[6],
                lat=r[7],
                lon=r[8],
                received=_dt(r[9]),
                photo_received_sha256=r[10],
                photo_sha256=r[11],
                place="node" if r[6] else "position",
            )
            out.append((obs, by_obs.get(obs.id, [])))
        return out
