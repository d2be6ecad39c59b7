"""The latest reading of every node, kept by the gateway in `<data_dir>/latest.sqlite` as readings
are stored, and followed by the dashboard's process by change number (issue 24).

The dashboard runs in a process of its own (issue 22), so it does not see readings as they are
stored. Refreshing its table from InfluxDB every few seconds cost per node, not per change: "the
last point of each of 1,000 series" is 120-190 ms of InfluxDB and about 50 ms of parsing that held
the dashboard's interpreter lock, which a page met at p95 (bench/fleet.py). Here the gateway's
`on_stored` hook upserts the newest reading of each node of a batch (one transaction a batch, a
node's row replaced only by a reading at least as recent), each write numbered with a change
counter, and the dashboard asks only for the rows changed since the number it last saw: a few rows
a second at a thousand nodes, whatever the fleet or its history.

A row is never deleted, so a node silent for months keeps its row. At start the gateway also fills
the table from the database's bounded lookup (`Reader.latest`), so readings stored before this file
existed, or by another program, are in it too. A new file (deleted, or made on another machine) has
a new `generation`: a follower that sees it change reads the whole table again. The file is a
cache of what InfluxDB holds, never the record: losing it loses nothing.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from contract.metrics import Metric
from contract.wire import ReadingPayload
from gateway.hooks import Hooks
from gateway.stores.reader import Latest, Reader
from gateway.timerange import from_ms

log = logging.getLogger(__name__)
FILE = "latest.sqlite"
METRICS: tuple[str, ...] = tuple(m.value for m in Metric)
SCHEMA = """
CREATE TABLE IF NOT EXISTS latest (
    site TEXT NOT NULL, node TEXT NOT NULL, time_ms INTEGER NOT NULL, seq INTEGER,
    "values" TEXT NOT NULL, flags TEXT NOT NULL, change INTEGER NOT NULL,
    PRIMARY KEY (site, node)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS latest_by_change ON latest (change);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""
UPSERT = """
INSERT INTO latest (site, node, time_ms, seq, "values", flags, change) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (site, node) DO UPDATE SET
    time_ms = excluded.time_ms, seq = excluded.seq, "values" = excluded."values",
    flags = excluded.flags, change = excluded.change
WHERE excluded.time_ms >= latest.time_ms
"""
NEWER = UPSERT.replace(">=", ">")  # from the database: a row as recent is the same reading, or newer
Row = tuple[str, str, int, int | None, str, str]


def _row(x: Latest) -> Row:
    return (x.site, x.node, int(x.time.timestamp() * 1000), x.seq, json.dumps(x.values), json.dumps(x.flags))


class LatestFile:
    """The gateway's side: `on_stored` is its hook, `seed` fills it from the database."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # the loop's hook and the seeding thread share the connection
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")  # the dashboard reads while the gateway writes
        self._db.execute("PRAGMA synchronous=NORMAL")  # a cache: a commit need not wait for the disk
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('generation', ?)", (uuid.uuid4().hex,))

    def on_stored(self, readings: list[ReadingPayload]) -> None:
        """The newest reading of each node in the batch, in one transaction: a batch of 1,000
        readings from 20 nodes is 20 rows."""
        newest: dict[tuple[str, str], ReadingPayload] = {}
        for r in readings:
            was = newest.get((r.site, r.node))
            if was is None or r.ts >= was.ts:
                newest[(r.site, r.node)] = r
        self.put([_row(latest_of(r)) for r in newest.values()])

    def put(self, rows: list[Row], *, upsert: str = UPSERT) -> None:
        if not rows:
            return
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")  # the write lock first: change numbers commit in order
            try:
                (last,) = db.execute("SELECT coalesce(max(change), 0) FROM latest").fetchone()
                db.executemany(upsert, [(*row, last + 1) for row in rows])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

    def seed(self, reader: Reader, now: datetime) -> int:
        """Every node's latest reading from the database, kept where it is newer than the row."""
        found = reader.latest(now)
        self.put([_row(x) for x in found], upsert=NEWER)
        return len(found)

    def seed_in_background(self, reader: Reader, clock: Callable[[], datetime]) -> threading.Thread:
        def run() -> None:
            try:
                log.info("latest readings: %d nodes from the database", self.seed(reader, clock()))
            except Exception as exc:  # the hook keeps the table current meanwhile
                log.warning("latest readings: could not read them from the database (%s)", exc)
            finally:
                reader.close()

        thread = threading.Thread(target=run, name="latest-seed", daemon=True)
        thread.start()
        return thread

    def close(self) -> None:
        with self._lock:
            self._db.close()


def latest_of(r: ReadingPayload) -> Latest:
    """What the reader would give for this reading once stored: metrics in the contract's order,
    a failed (null) metric left out."""
    sent = {str(m): mv.value for m, mv in r.metrics.items() if mv.value is not None}
    values = {m: float(sent[m]) for m in METRICS if m in sent}
    return Latest(r.site, r.node, r.ts, r.seq, values, [f.value for f in r.flags])


def attach(hooks: Hooks, path: Path) -> LatestFile | None:
    """Keep the file as readings are stored; None (and a warning) when it cannot be opened: the
    dashboard then reads the database instead."""
    try:
        latest = LatestFile(path)
    except (OSError, sqlite3.Error) as exc:
        log.warning("latest readings: cannot open %s (%s); the dashboard will ask the database", path, exc)
        return None
    hooks.on_stored.append(latest.on_stored)
    return latest


@dataclass(frozen=True, slots=True)
class Changes:
    generation: str
    cursor: int  # the last change number read
    rows: list[Latest]
    whole: bool  # the whole table (a first read, or a new file): what is not in it is gone


class LatestFollower:
    """The dashboard's side: what changed in the file since the last `read`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._generation: str | None = None
        self._cursor = 0

    def read(self) -> Changes | None:
        """The rows changed since the last read (all of them the first time, or when the file is
        new); None when there is no file (no gateway has kept one here)."""
        if not self.path.exists():
            return None
        # A connection per read: a file replaced under us is then the new file, never the old inode.
        db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5)
        try:
            got = db.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            if got is None:
                return None
            generation = str(got[0])
            whole = generation != self._generation
            since = 0 if whole else self._cursor
            rows = db.execute(
                'SELECT site, node, time_ms, seq, "values", flags, change FROM latest WHERE change > ?'
                " ORDER BY change",
                (since,),
            ).fetchall()
        finally:
            db.close()
        cursor = max([since, *(int(r[6]) for r in rows)])
        self._generation, self._cursor = generation, cursor
        out = [
            Latest(
                str(s), str(n), from_ms(int(t)), None if q is None else int(q), json.loads(v), json.loads(f)
            )
            for s, n, t, q, v, f, _ in rows
        ]
        return Changes(generation, cursor, out, whole)
