"""Keeps the hourly and daily roll-ups (`reading_1h`, `reading_1d`) up to date as readings arrive.

The `on_stored` hook marks the (node, hour) and (node, day) buckets each stored reading falls in;
the ticker has the backend recompute a marked bucket from the raw readings (gateway/stores/) once
nothing has landed in it for SETTLE, or once it has waited MAX_WAIT (the current hour and day, which
keep receiving). A node's backlog after an outage lands in hours rolled up long ago and marks them
again, which is what InfluxDB's continuous queries cannot do.

Hooks see a reading when it is durable, which may be in the spool rather than in InfluxDB: while
the spool holds anything the ticker waits. The marks are kept in the data directory, so a gateway
stopped (or killed) before it recomputed still recomputes them after a restart.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from contract.clock import Clock
from contract.wire import ReadingPayload
from gateway.hooks import Hooks
from gateway.stores.base import StoreError
from gateway.stores.rollups import BUCKETS, Period, Recompute, RollupBackend
from gateway.timerange import from_ms

log = logging.getLogger(__name__)

DIRTY_FILE = "rollup-dirty.json"
SETTLE = timedelta(seconds=30)
MAX_WAIT = timedelta(minutes=5)
RETRY = timedelta(seconds=30)
HOUR_MS, DAY_MS = 3_600_000, 86_400_000

Key = tuple[str, str, Period, int]
"""(site, node, period, bucket start in epoch ms)."""


@dataclass
class _Mark:
    first: datetime
    last: datetime


def bucket_of(ts_ms: int, period: Period) -> int:
    """The start of the bucket (b, b + d] holding a reading stamped `ts_ms`."""
    width = int(BUCKETS[period].total_seconds() * 1000)
    return (ts_ms - 1) // width * width


class Rollups:
    def __init__(
        self,
        backend: RollupBackend,
        clock: Clock,
        state: Path | None = None,
        *,
        waiting: Callable[[], bool] = lambda: False,
        background: bool = False,
    ) -> None:
        # `waiting`: readings are durable but not yet in the database (the spool holds some);
        # `background`: recompute on a thread of its own, so that a day of fifty nodes' readings
        # (a second of InfluxDB's time) never holds up the loop that stores and acknowledges
        self._backend = backend
        self._clock = clock
        self._state = state
        self._waiting = waiting
        self._marks: dict[Key, _Mark] = {}
        self._intervals: dict[tuple[str, str], int] = {}
        self._retry_at: datetime | None = None
        self._background = background
        self._worker: threading.Thread | None = None
        self._lock = threading.Lock()  # the marks, between the loop's hook and the worker
        self._load()

    @property
    def pending(self) -> int:
        return len(self._marks)

    def stored(self, readings: list[ReadingPayload]) -> None:
        """On the ingest path, so per reading only its hour is taken; the rest once per hour."""
        hours = {
            (r.site, r.node, r.period_s, (int(r.ts.timestamp() * 1000) - 1) // HOUR_MS) for r in readings
        }
        now = self._clock()
        fresh = False
        with self._lock:
            fresh = self._mark(hours, now)
        if fresh:  # a new bucket: worth a write; another reading in a marked one is not
            self._save()

    def _mark(self, hours: set[tuple[str, str, int, int]], now: datetime) -> bool:
        fresh = False
        for site, node, period_s, hour in hours:
            self._intervals[(site, node)] = period_s
            start = hour * HOUR_MS
            for key in ((site, node, "1h", start), (site, node, "1d", start // DAY_MS * DAY_MS)):
                mark = self._marks.get(key)
                if mark is None:
                    self._marks[key] = _Mark(now, now)
                    fresh = True
                else:
                    mark.last = now
        return fresh

    def tick(self) -> None:
        now = self._clock()
        if not self._marks or self._waiting() or (self._retry_at is not None and now < self._retry_at):
            return
        if self._worker is not None and self._worker.is_alive():
            return
        with self._lock:
            due = [k for k, m in self._marks.items() if now - m.last >= SETTLE or now - m.first >= MAX_WAIT]
        if not due:
            return
        if self._background:
            self._worker = threading.Thread(target=self._work, args=(due,), name="rollups", daemon=True)
            self._worker.start()
        else:
            self.flush(due)

    def _work(self, due: list[Key]) -> None:
        try:
            self.flush(due)
        except Exception:  # a bug here must not end the roll-ups for good: the marks stay
            log.exception("roll-ups: recompute failed")
            self._retry_at = self._clock() + RETRY

    def join(self, timeout_s: float = 30.0) -> None:
        """Wait for a recompute under way (a stopping gateway; what is left stays marked)."""
        if self._worker is not None:
            self._worker.join(timeout_s)

    def flush(self, keys: list[Key] | None = None) -> int:
        """Recompute the buckets `keys` (every marked one when None) now; returns points written."""
        with self._lock:
            keys = list(self._marks) if keys is None else keys
        started = self._clock()
        try:
            metrics = self._backend.metric_fields()
            written = 0
            for job in jobs(keys):
                intervals = {n: self._intervals.get((job.site, n), 60) for n in job.nodes}
                written += self._backend.recompute(job, metrics, intervals)
        except StoreError as exc:
            log.warning("roll-ups: recompute failed (%s); %d buckets wait", exc, len(self._marks))
            self._retry_at = self._clock() + RETRY
            return 0
        self._retry_at = None
        with self._lock:
            for k in keys:
                mark = self._marks.get(k)
                if mark is not None and mark.last < started:  # marked again meanwhile: once more later
                    del self._marks[k]
        self._save()
        return written

    def _load(self) -> None:
        if self._state is None or not self._state.exists():
            return
        try:
            doc = json.loads(self._state.read_text())
            now = self._clock()
            for site, node, period, start_ms in doc.get("dirty", []):
                if period not in BUCKETS:
                    raise ValueError(f"unknown period {period!r}")
                self._marks[(str(site), str(node), period, int(start_ms))] = _Mark(now, now)
            for site, node, interval in doc.get("intervals", []):
                self._intervals[(str(site), str(node))] = int(interval)
        except (ValueError, TypeError, KeyError) as exc:
            # derived data: the worst a lost mark costs is a roll-up `rollup --rebuild` redoes
            log.warning("roll-ups: %s unreadable (%s); starting with no marked buckets", self._state, exc)

    def _save(self) -> None:
        if self._state is None:
            return
        with self._lock:  # the loop's hook and the worker both save: one at a time, one file
            doc = {
                "dirty": [list(k) for k in self._marks],
                "intervals": [[s, n, i] for (s, n), i in self._intervals.items()],
            }
            tmp = self._state.with_suffix(".tmp")
            tmp.write_text(json.dumps(doc))
            os.replace(tmp, self._state)


def jobs(keys: list[Key]) -> list[Recompute]:
    """Marked buckets as few queries: per node, runs of consecutive buckets; nodes whose runs are
    the same (every node's current hour) share one query."""
    by_node: dict[tuple[str, str, Period], list[int]] = defaultdict(list)
    for site, node, period, start_ms in keys:
        by_node[(site, node, period)].append(start_ms)
    runs: dict[tuple[str, Period, int, int], list[str]] = defaultdict(list)
    for (site, node, period), starts in by_node.items():
        width = int(BUCKETS[period].total_seconds() * 1000)
        starts.sort()
        lo = prev = starts[0]
        for s in starts[1:]:
            if s != prev + width:
                runs[(site, period, lo, prev + width)].append(node)
                lo = s
            prev = s
        runs[(site, period, lo, prev + width)].append(node)
    return [
        Recompute(site, sorted(nodes), from_ms(lo), from_ms(hi), period)
        for (site, period, lo, hi), nodes in sorted(runs.items())
    ]


def attach(hooks: Hooks, rollups: Rollups) -> None:
    hooks.on_stored.append(rollups.stored)
    hooks.tickers.append(rollups.tick)
