"""Durable alert state in `<data_dir>/alerts.sqlite`: the machines, every event, the delivery outbox,
and acknowledgements requested by `minewatch-gateway ack`.

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
"""


class AlertStore:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an alert raised is an alert remembered
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

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
