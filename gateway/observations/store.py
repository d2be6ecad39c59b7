"""Observer codes, submitted observations and every moderation decision, in one SQLite file.

Kept on the gateway like the alert state (gateway/alerts/store.py), not in InfluxDB: a queue that
holds photos, secrets (the codes' hashes) and decisions that must be appended in one transaction
with the state they change is not a time series. Nothing is deleted or overwritten: a revoked code
keeps its row, a decision is a new row, and an observation submitted twice (the phone's queue sent
it again) is the first one, answered as already received.
"""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

KINDS = ("dust", "blasting", "trucks", "water_colour", "dead_fish", "smell", "noise", "other")
"""What a resident can report; `other` with the free text."""
Decision = Literal["accepted", "rejected"]
STORE_FILE = "observations.sqlite"
"""In the gateway's data directory; photos in `photos/` beside it."""
RATE_PER_HOUR = 20
"""Submissions one observer code may make in an hour: enough for a busy afternoon, too few to flood."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS observers (id INTEGER PRIMARY KEY, name TEXT NOT NULL,
  code_sha256 TEXT NOT NULL UNIQUE, created TEXT NOT NULL, revoked TEXT, revoked_by TEXT);
CREATE TABLE IF NOT EXISTS observations (id TEXT PRIMARY KEY, observer INTEGER NOT NULL,
  kind TEXT NOT NULL, text TEXT NOT NULL, at TEXT NOT NULL, site TEXT, node TEXT, lat REAL, lon REAL,
  received TEXT NOT NULL, photo_received_sha256 TEXT, photo_sha256 TEXT,
  FOREIGN KEY (observer) REFERENCES observers (id));
CREATE TABLE IF NOT EXISTS decisions (id INTEGER PRIMARY KEY, observation TEXT NOT NULL,
  decision TEXT NOT NULL, by TEXT NOT NULL, at TEXT NOT NULL, why TEXT NOT NULL,
  FOREIGN KEY (observation) REFERENCES observations (id));
"""


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


@dataclass(frozen=True, slots=True)
class Observation:
    id: str
    observer: int
    kind: str
    text: str
    at: datetime
    site: str | None
    node: str | None
    lat: float | None
    lon: float | None
    received: datetime
    photo_received_sha256: str | None  # of the bytes the phone sent
    photo_sha256: str | None  # of the re-encoded photo kept and served
    state: str  # "pending", or the last decision
    decided_by: str | None = None
    decided_at: datetime | None = None
    why: str | None = None


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    observation: str
    decision: str
    by: str
    at: datetime
    why: str


class RateLimited(Exception):
    """The code made RATE_PER_HOUR submissions in the last hour."""


class UnknownCode(Exception):
    """No such code, or it was revoked."""


class ObservationStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.photos = path.parent / "photos"
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
            rows = self._db.execute("SELECT id, name, created, revoked FROM observers ORDER BY id").fetchall()
        return [Observer(int(i), str(n), _dt(c), _dt(r) if r else None) for i, n, c, r in rows]

    def observer_of(self, code: str) -> int:
        with self._lock:
            row = self._db.execute(
                "SELECT id FROM observers WHERE code_sha256 = ? AND revoked IS NULL", (code_hash(code),)
            ).fetchone()
        if row is None:
            raise UnknownCode("unknown or revoked observer code")
        return int(row[0])

    # observations

    def find(self, obs_id: str) -> Observation | None:
        found = self._select("WHERE o.id = ?", (obs_id,))
        return found[0] if found else None

    def check_rate(self, observer: int, now: datetime) -> None:
        since = _iso(now - timedelta(hours=1))
        with self._lock:
            (n,) = self._db.execute(
                "SELECT count(*) FROM observations WHERE observer = ? AND received > ?", (observer, since)
            ).fetchone()
        if int(n) >= RATE_PER_HOUR:
            raise RateLimited(f"at most {RATE_PER_HOUR} observations an hour from one code; try later")

    def add(self, obs: Observation, photo: bytes | None) -> bool:
        """Store a new observation (and its re-encoded photo, first, so a row never names a missing
        file); False when its id was already received."""
        if photo is not None and obs.photo_sha256 is not None:
            self.photos.mkdir(parents=True, exist_ok=True)
            target = self.photos / f"{obs.photo_sha256}.jpg"
            if not target.exists():
                tmp = target.with_suffix(".tmp")
                tmp.write_bytes(photo)
                tmp.replace(target)
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO observations VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    obs.id,
                    obs.observer,
                    obs.kind,
                    obs.text,
                    _iso(obs.at),
                    obs.site,
                    obs.node,
                    obs.lat,
                    obs.lon,
                    _iso(obs.received),
                    obs.photo_received_sha256,
                    obs.photo_sha256,
                ),
            )
        return cur.rowcount == 1

    def photo(self, obs: Observation) -> Path | None:
        return None if obs.photo_sha256 is None else self.photos / f"{obs.photo_sha256}.jpg"

    def decide(self, obs_id: str, decision: Decision, by: str, why: str, now: datetime) -> DecisionRecord:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self._db.execute("SELECT 1 FROM observations WHERE id = ?", (obs_id,)).fetchone() is None:
                    raise KeyError(obs_id)
                self._db.execute(
                    "INSERT INTO decisions (observation, decision, by, at, why) VALUES (?, ?, ?, ?, ?)",
                    (obs_id, decision, by, _iso(now), why),
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return DecisionRecord(obs_id, decision, by, now, why)

    def decisions(self, obs_id: str) -> list[DecisionRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT observation, decision, by, at, why FROM decisions WHERE observation = ? ORDER BY id",
                (obs_id,),
            ).fetchall()
        return [DecisionRecord(str(o), str(d), str(b), _dt(a), str(w)) for o, d, b, a, w in rows]

    def listed(
        self, state: str | None = None, start: datetime | None = None, end: datetime | None = None
    ) -> list[Observation]:
        """Observations by the time they were made, oldest first; `state` keeps only those whose last
        decision is it ("pending": none yet); `start`/`end` bound `at` as (start, end]."""
        where, params = [], []
        if start is not None:
            where.append("o.at > ?")
            params.append(_iso(start))
        if end is not None:
            where.append("o.at <= ?")
            params.append(_iso(end))
        found = self._select(("WHERE " + " AND ".join(where)) if where else "", tuple(params))
        return [o for o in found if state is None or o.state == state]

    def _select(self, where: str, params: tuple[object, ...]) -> list[Observation]:
        last = (
            "SELECT d.observation, d.decision, d.by, d.at, d.why FROM decisions d WHERE d.id = "
            "(SELECT max(id) FROM decisions WHERE observation = d.observation)"
        )
        q = (
            "SELECT o.*, l.decision, l.by, l.at, l.why FROM observations o "
            f"LEFT JOIN ({last}) l ON l.observation = o.id {where} ORDER BY o.at, o.id"
        )
        with self._lock:
            rows = self._db.execute(q, params).fetchall()
        out = []
        for r in rows:
            out.append(
                Observation(
                    id=str(r[0]),
                    observer=int(r[1]),
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
                    state=str(r[12]) if r[12] else "pending",
                    decided_by=r[13],
                    decided_at=_dt(r[14]) if r[14] else None,
                    why=r[15],
                )
            )
        return out
