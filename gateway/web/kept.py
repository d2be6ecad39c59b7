"""The latest reading of every node, kept in memory for the dashboard and refreshed from the
reader every `refresh_s`.

InfluxDB answers "the last reading of each of a thousand series" in 120-190 ms however short the
window (its cost is per series), so the overview and the API would cost ten times more at 1,000
nodes than at 20 if every page asked. The dashboard runs in a process of its own (issue 22: the
public pages must never take ingest's files or CPU), so it does not see readings as they are
stored: it refreshes the table instead (every 5 s, gateway/web/server.py). `on_stored` keeps a
table current from readings handed over directly, for a process that stores them.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from contract.metrics import Metric
from contract.wire import ReadingPayload
from gateway.stores.reader import Latest, Reader

log = logging.getLogger(__name__)
METRICS: tuple[str, ...] = tuple(m.value for m in Metric)
REFRESH_S = 600.0


def latest_of(r: ReadingPayload) -> Latest:
    """What the reader would give for this reading once stored: metrics in the contract's order,
    a failed (null) metric left out."""
    sent = {str(m): mv.value for m, mv in r.metrics.items() if mv.value is not None}
    values = {m: float(sent[m]) for m in METRICS if m in sent}
    return Latest(r.site, r.node, r.ts, r.seq, values, [f.value for f in r.flags])


class KeptLatest:
    """`latest` as the reader answers it, from memory; `on_stored` is the gateway's hook."""

    def __init__(
        self, reader: Reader, *, refresh_s: float = REFRESH_S, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self._reader = reader
        self._refresh_s = refresh_s
        self._monotonic = monotonic
        self._lock = threading.Lock()  # the loop's thread writes, the web server's thread reads
        self._kept: dict[tuple[str, str], Latest] = {}
        self._filled_at: float | None = None
        self._background = False

    def refresh(self, now: datetime) -> None:
        """Read every node's latest reading from the database into the table."""
        stored = self._reader.latest(now)  # outside the lock: pages go on meanwhile
        with self._lock:
            for x in stored:
                self._keep(x)
            self._filled_at = self._monotonic()

    def refresh_in_background(self, clock: Callable[[], datetime]) -> threading.Thread:
        """Refresh every `refresh_s` on a daemon thread of its own, so that no page waits for the
        database's per-series cost (bench/fleet.py: a page that refreshed the table for 1,000 nodes
        took 45 ms at p95 against 4 ms). A page refreshes it itself only when the thread has not
        done so for three periods (it died, or the database is slow)."""

        def loop() -> None:
            while True:
                try:
                    self.refresh(clock())
                except Exception as exc:
                    log.warning("the dashboard could not refresh the latest readings: %s", exc)
                time.sleep(self._refresh_s)

        self._background = True
        thread = threading.Thread(target=loop, name="kept-latest", daemon=True)
        thread.start()
        return thread

    def on_stored(self, readings: list[ReadingPayload]) -> None:
        with self._lock:
            for r in readings:
                self._keep(latest_of(r))

    def _keep(self, x: Latest) -> None:
        was = self._kept.get((x.site, x.node))
        if was is None or x.time >= was.time:
            self._kept[(x.site, x.node)] = x

    def latest(self, now: datetime, *, site: str | None = None, node: str | None = None) -> list[Latest]:
        at = self._monotonic()
        stale_after = self._refresh_s * (3 if self._background else 1)
        if self._filled_at is None or at - self._filled_at > stale_after:
            self.refresh(now)
        with self._lock:
            found = [
                x
                for x in self._kept.values()
                if (site is None or x.site == site) and (node is None or x.node == node)
            ]
        if any(now < x.time for x in found):
            # A reading stamped after `now` (a node's clock ahead, a page for a past moment): what
            # was last at `now` is only in the database.
            return self._reader.latest(now, site=site, node=node)
        return sorted(found, key=lambda x: (x.site, x.node))


class HourlyMeans:
    """The NowCast's hourly PM2.5 means per node, kept for the hour they belong to.

    They are the 12 full hours before the current one, so they change only when the hour turns or a
    late reading lands in them; kept for at most `max_age_s`, a late reading shows within minutes,
    and a page of 100 nodes no longer asks InfluxDB for 1,200 means on every request."""

    def __init__(self, *, max_age_s: float = 300.0, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._max_age_s = max_age_s
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._hour: tuple[datetime, float] | None = None  # the hour's end, and when it was first asked
        self._means: dict[tuple[str, str], list[float | None]] = {}
        self._asked: set[tuple[str, str]] = set()  # nodes asked about this hour, with means or not

    def get(
        self,
        fetch: Callable[[list[tuple[str, str]]], dict[tuple[str, str], list[float | None]]],
        end_hour: datetime,
        keys: list[tuple[str, str]],
    ) -> dict[tuple[str, str], list[float | None]]:
        """The means of `keys` for the 12 hours before `end_hour`; `fetch` reads the missing ones."""
        now = self._monotonic()
        with self._lock:
            if self._hour is None or self._hour[0] != end_hour or now - self._hour[1] > self._max_age_s:
                self._hour, self._means, self._asked = (end_hour, now), {}, set()
            missing = [k for k in keys if k not in self._asked]
        found = fetch(missing) if missing else {}
        with self._lock:
            if missing and self._hour is not None and self._hour[0] == end_hour:
                self._means.update(found)
                self._asked.update(missing)
            means = {**self._means, **found}
        return {k: means[k] for k in keys if k in means}
