"""Durable alert state in `<data_dir>/alerts.sqlite`: the machines, every event, the delivery outbox,
acknowledgements requested by `minewatch-gateway ack` (and by an acknowledgement link, which the
dashboard's process puts here the same way), and the links' tokens, kept as their SHA-256 only.

An event and the machine state that produced it are committed in one transaction together with one
outbox row per channel that should get it; a row is deleted only once its channel delivered it. So
a gateway killed at any moment neither forgets an active alert (the machine is stored) nor raises it
again (the machine says it is active), and a notification not yet delivered is sent after the restart.
WAL mode lets the `ack` command write while the gateway runs.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gateway.alerts.machine import MachineState

SCHEMA = """
CREATE TABLE IF NOT EXISTS machines (rule TEXT, site TEXT, node TEXT, state TEXT NOT NULL,
  PRIMARY KEY (rule, site, node));
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, alert_id TEXT, state TEXT, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, event INTEGER NOT NULL, channel TEXT NOT NULL,
  failed INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS acks (id INTEGER PRIMARY KEY, alert_id TEXT NOT NULL, by TEXT NOT NULL,
  requested REAL NOT NULL, result TEXT);
CREATE TABLE IF NOT EXISTS ack_tokens (hash TEXT PRIMARY KEY, alert_id TEXT NOT NULL,
  recipient TEXT NOT NULL, channel TEXT NOT NULL, created REAL NOT NULL, expires REAL NOT NULL,
  used REAL, ack INTEGER, language TEXT);
"""
MIGRATIONS = (("ack_tokens", "language", "ALTER TABLE ack_tokens ADD COLUMN language TEXT"),)
"""Columns added since a table was first made: (table, column, statement), applied when a store
made before them is opened. Additive only; a NULL `ack_tokens.language` (a token made before it)
means the gateway's `[web] language`."""


@dataclass(frozen=True, slots=True)
class AckToken:
    """An acknowledgement link's record: for which alert, for whom (the name its use records), sent
    through which channel, valid until when, and whether (and by which ack request) it was used."""

    alert_id: str
    recipient: str
    channel: str
    created: float  # epoch seconds
    expires: float
    used: float | None
    ack: int | None  # the row in `acks` its use made
    language: str | None = None  # the recipient's; None: the gateway's `[web] language`


class AlertStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an alert raised is an alert remembered
        self._db.executescript(SCHEMA)
        self._migrate()
        self._lock = threading.Lock()

    def _migrate(self) -> None:
        for table, column, statement in MIGRATIONS:
            have = {str(row[1]) for row in self._db.execute(f"PRAGMA table_info({table})")}
            if column not in have:
                try:
                    self._db.execute(statement)
                except sqlite3.OperationalError:  # the dashboard's connection added it meanwhile
                    have = {str(row[1]) for row in self._db.execute(f"PRAGMA table_info({table})")}
                    if column not in have:
                        raise

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def machines(self) -> list[MachineState]:
        with self._lock:
            rows = self._db.execute("SELECT state FROM machines").fetchall()
        return [MachineState(**json.loads(r[0])) for r in rows]

    def commit(
        self, machines: list[MachineState], events: list[tuple[dict[str, Any], list[str]]]
    ) -> list[tuple[int, str, dict[str, Any]]]:
        """Persist machine states and events (each with the channels to deliver it to) atomically;
        return the outbox rows to hand to the dispatcher."""
        rows: list[tuple[int, str, dict[str, Any]]] = []
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for m in machines:
                    self._db.execute(
                        "INSERT OR REPLACE INTO machines VALUES (?, ?, ?, ?)",
                        (m.rule, m.site, m.node, json.dumps(m.to_dict())),
                    )
                for doc, channels in events:
                    cur = self._db.execute(
                        "INSERT INTO events (alert_id, state, doc) VALUES (?, ?, ?)",
                        (doc["id"], doc["state"], json.dumps(doc, ensure_ascii=False)),
                    )
                    event_id = cur.lastrowid
                    for channel in channels:
                        c = self._db.execute(
                            "INSERT INTO outbox (event, channel) VALUES (?, ?)", (event_id, channel)
                        )
                        assert c.lastrowid is not None
                        rows.append((c.lastrowid, channel, doc))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return rows

    def pending(self) -> list[tuple[int, str, dict[str, Any]]]:
        """Undelivered outbox rows, oldest first (re-sent after a restart)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT o.id, o.channel, e.doc FROM outbox o JOIN events e ON e.id = o.event "
                "WHERE o.failed = 0 ORDER BY o.id"
            ).fetchall()
        return [(int(i), str(c), json.loads(d)) for i, c, d in rows]

    def delivered(self, row_ids: list[int]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in row_ids])

    def gave_up(self, row_ids: list[int]) -> None:
        """Kept, marked failed: `ack --list` shows them and nothing is silently lost."""
        with self._lock:
            self._db.executemany("UPDATE outbox SET failed = 1 WHERE id = ?", [(i,) for i in row_ids])

    def failed_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox WHERE failed = 1").fetchone()[0])

    def events(self, alert_id: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            if alert_id is None:
                rows = self._db.execute("SELECT doc FROM events ORDER BY id").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT doc FROM events WHERE alert_id = ? ORDER BY id", (alert_id,)
                ).fetchall()
        return [json.loads(r[0]) for r in rows]

    # -- acknowledgements from the CLI ------------------------------------------------------------

    def request_ack(self, alert_id: str, by: str) -> int:
        with self._lock:
            cur = self._db.execute(
                "INSERT INTO acks (alert_id, by, requested) VALUES (?, ?, ?)", (alert_id, by, time.time())
            )
        assert cur.lastrowid is not None
        return cur.lastrowid

    def open_acks(self) -> list[tuple[int, str, str]]:
        with self._lock:
            rows = self._db.execute("SELECT id, alert_id, by FROM acks WHERE result IS NULL").fetchall()
        return [(int(i), str(a), str(b)) for i, a, b in rows]

    def ack_result(self, ack_id: int, result: str | None = None) -> str | None:
        with self._lock:
            if result is not None:
                self._db.execute("UPDATE acks SET result = ? WHERE id = ?", (result, ack_id))
                return result
            row = self._db.execute("SELECT result FROM acks WHERE id = ?", (ack_id,)).fetchone()
        return None if row is None or row[0] is None else str(row[0])

    def machine_of(self, alert_id: str) -> MachineState | None:
        """The machine whose active alert this is; None once it ended (or never was)."""
        return next((m for m in self.machines() if m.alert_id == alert_id), None)

    # -- acknowledgement links ------------------------------------------------------------------

    def add_token(
        self,
        digest: str,
        alert_id: str,
        recipient: str,
        channel: str,
        created: float,
        expires: float,
        language: str | None = None,
    ) -> None:
        """A link's token; `language`: the one its recipient reads (its pages speak it)."""
        with self._lock:
            self._db.execute(
                "INSERT INTO ack_tokens (hash, alert_id, recipient, channel, created, expires, language)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (digest, alert_id, recipient, channel, created, expires, language),
            )

    def token(self, digest: str) -> AckToken | None:
        with self._lock:
            row = self._db.execute(
                "SELECT alert_id, recipient, channel, created, expires, used, ack, language FROM ack_tokens"
                " WHERE hash = ?",
                (digest,),
            ).fetchone()
        return None if row is None else AckToken(*row)

    def use_token(self, digest: str, now: float) -> int | None:
        """Spend a token on an acknowledgement request, in one transaction: the ack row (the same
        the CLI writes, `by` its recipient) or None when it was already used (a second tap, a
        second tab), so two confirmations make one request."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT alert_id, recipient FROM ack_tokens WHERE hash = ? AND used IS NULL", (digest,)
                ).fetchone()
                if row is None:
                    self._db.execute("COMMIT")
                    return None
                cur = self._db.execute(
                    "INSERT INTO acks (alert_id, by, requested) VALUES (?, ?, ?)", (row[0], row[1], now)
                )
                self._db.execute(
                    "UPDATE ack_tokens SET used = ?, ack = ? WHERE hash = ?", (now, cur.lastrowid, digest)
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        assert cur.lastrowid is not None
        return cur.lastrowid

    def forget_tokens(self, before: float) -> int:
        """Drop tokens that expired before `before` (kept a while, so a late tap is told "expired"
        rather than "unknown")."""
        with self._lock:
            return self._db.execute("DELETE FROM ack_tokens WHERE expires < ?", (before,)).rowcount


@dataclass(frozen=True, slots=True)
class NewEvents:
    docs: list[dict[str, Any]]  # oldest first
    whole: bool  # every event (a first read, or a new file): what is not in it is gone


class EventFollower:
    """The dashboard's side of `events` (issue 24): the events committed since the last `read`, by
    id, over a read-only connection per read (the file is the gateway's; a replaced file is then the
    new file, never the old inode). Events are never deleted, so their ids only grow; a file whose
    first event is another one is a new file, read whole."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._first: str | None = None
        self._cursor = 0

    def read(self) -> NewEvents | None:
        """None when there is no file (no gateway keeps its alerts here)."""
        if not self.path.exists():
            return None
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        try:
            first = db.execute("SELECT id, alert_id FROM events ORDER BY id LIMIT 1").fetchone()
            mark = None if first is None else f"{first[0]}:{first[1]}"
            whole = mark != self._first
            since = 0 if whole else self._cursor
            rows = db.execute("SELECT id, doc FROM events WHERE id > ? ORDER BY id", (since,)).fetchall()
        finally:
            db.close()
        self._first, self._cursor = mark, max([since, *(int(r[0]) for r in rows)])
        return NewEvents([json.loads(d) for _, d in rows], whole)
