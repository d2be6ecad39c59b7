"""The latest reading of every node, kept in memory for the dashboard.

The dashboard runs in a process of its own (issue 22), so it does not see readings as they are
stored. The gateway keeps them in `<data_dir>/latest.sqlite` (gateway/latest.py) and this table
follows that file by change number every `refresh_s`: each refresh reads the few rows that changed,
each page reads memory, and neither costs more at a thousand nodes than at twenty. Where there is
no such file (a `serve` on another machine than the gateway) it refreshes from the reader's bounded
lookup instead, as before, whose cost is per node: InfluxDB answers "the last reading of each of a
thousand series" in 120-190 ms however short the window, and parsing them held the interpreter lock
for about 50 ms (bench/fleet.py). Even when following the file it asks the reader every
`reconcile_s`, for readings another program stored. `on_stored` keeps a table current from
readings handed over directly, for a process that stores them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime

from contract.wire import ReadingPayload
from gateway.alerts.record import as_recorded
from gateway.alerts.store import EventFollower
from gateway.latest import LatestFollower, latest_of
from gateway.stores.reader import AlertEvent, Latest, Reader

log = logging.getLogger(__name__)


def _every(period_s: float, step: Callable[[], object], name: str, what: str) -> threading.Thread:
    """`step` every `period_s` on a daemon thread, for ever: a failure is logged and the next
    period tries again (the pages meanwhile refresh themselves once the table is stale)."""

    def loop() -> None:
        while True:
            try:
                step()
            except Exception as exc:
                log.warning("the dashboard could not refresh %s: %s", what, exc)
            time.sleep(period_s)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread


REFRESH_S = 600.0
RECONCILE_S = 600.0
FALLBACK_S = 5.0  # without the file, the reader is asked at most this often (its cost is per node)


class KeptLatest:
    """`latest` as the reader answers it, from memory; `on_stored` is the gateway's hook."""

    def __init__(
        self,
        reader: Reader,
        *,
        follow: LatestFollower | None = None,
        refresh_s: float = REFRESH_S,
        reconcile_s: float = RECONCILE_S,
        fallback_s: float = FALLBACK_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._follow = follow
        self._refresh_s = refresh_s
        self._reconcile_s = reconcile_s
        self._fallback_s = fallback_s
        self._monotonic = monotonic
        self._lock = threading.Lock()  # the refreshing thread writes, the web server's threads read
        self._kept: dict[tuple[str, str], Latest] = {}
        self._sorted: list[Latest] | None = None  # made again only after a change, not per page
        self._by_site: dict[str, list[Latest]] = {}
        self._newest: datetime | None = None
        self._filled_at: float | None = None
        self._asked_at: float | None = None  # when the reader was last asked
        self._background = False
        self._follow_error = ""

    def refresh(self, now: datetime) -> None:
        """The rows of the file changed since the last refresh; every node's latest reading from
        the reader every `reconcile_s` too, or every `fallback_s` when there is no file."""
        changes = None
        if self._follow is not None:
            try:
                changes = self._follow.read()
            except (sqlite3.Error, OSError) as exc:  # (a `serve` whose user may not read data_dir)
                if str(exc) != self._follow_error:  # once per problem, not every second
                    log.warning(
                        "the dashboard cannot read %s (%s); asking the database", self._follow.path, exc
                    )
                self._follow_error = str(exc)
        at = self._monotonic()
        stored: list[Latest] = [] if changes is None else changes.rows
        every = self._fallback_s if changes is None else self._reconcile_s
        due = self._asked_at is None or at - self._asked_at >= every
        if changes is not None and self._asked_at is None:
            self._asked_at = at  # following from the start: the first reconciliation is one period on
        elif due:
            stored = [*stored, *self._reader.latest(now)]  # outside the lock: pages go on meanwhile
            self._asked_at = at
        with self._lock:
            for x in stored:
                self._keep(x)
            self._filled_at = at

    def refresh_in_background(self, clock: Callable[[], datetime]) -> threading.Thread:
        """Refresh every `refresh_s` on a daemon thread of its own, so that no page waits for it.
        A page refreshes the table itself only when the thread has not done so for three periods
        (it died, or the database is slow)."""

        self._background = True
        return _every(self._refresh_s, lambda: self.refresh(clock()), "kept-latest", "the latest readings")

    def on_stored(self, readings: list[ReadingPayload]) -> None:
        with self._lock:
            for r in readings:
                self._keep(latest_of(r))

    def _keep(self, x: Latest) -> None:
        """`x` unless a newer reading is kept; the same reading again (a reconciliation asks the
        reader for every node) keeps the object it was, so what the pages made of it stays."""
        was = self._kept.get((x.site, x.node))
        if was is None or (x.time >= was.time and x != was):
            self._kept[(x.site, x.node)] = x
            self._sorted = None
            if self._newest is None or x.time > self._newest:
                self._newest = x.time

    def _all(self) -> list[Latest]:
        """Sorted by (site, node), made again only after a change (call with the lock held)."""
        if self._sorted is None:
            self._sorted = sorted(self._kept.values(), key=lambda x: (x.site, x.node))
            self._by_site = {}
            for x in self._sorted:
                self._by_site.setdefault(x.site, []).append(x)
        return self._sorted

    def latest(self, now: datetime, *, site: str | None = None, node: str | None = None) -> list[Latest]:
        at = self._monotonic()
        stale_after = self._refresh_s * (3 if self._background else 1)
        if self._filled_at is None or at - self._filled_at > stale_after:
            self.refresh(now)
        with self._lock:
            everything = self._all()
            if site is not None and node is not None:
                one = self._kept.get((site, node))
                found = [] if one is None else [one]
            elif site is not None:
                found = list(self._by_site.get(site, ()))
            elif node is not None:
                found = [x for x in everything if x.node == node]
            else:
                found = list(everything)
            newest = self._newest
        if newest is not None and now < newest and any(now < x.time for x in found):
            # A reading stamped after `now` (a node's clock ahead, a page for a past moment): what
            # was last at `now` is only in the database.
            return self._reader.latest(now, site=site, node=node)
        return found


Series = tuple[str, str, str, str]  # (metric, node, rule, site): an `alert` series, in InfluxDB's order


class KeptAlerts:
    """The active alerts as `Reader.active_alerts` answers them, from memory (issue 24).

    The overview and `/api/v1/alerts/active` asked InfluxDB for the last event of every alert series
    on each request: 6.7 ms with 60 active alerts, 333 ms with 3,000. Every event the gateway raises,
    reminds, acknowledges or clears is first committed to its alert store (`alerts.sqlite`,
    gateway/alerts/store.py), from which the `alert` measurement is written; this table follows
    that store's `events` by id every `refresh_s`, reading only the new rows, and keeps the last
    event of each series. Where there is no such file (a `serve` on another machine) every call
    asks the reader, as before."""

    def __init__(
        self,
        reader: Reader,
        *,
        follow: EventFollower | None = None,
        refresh_s: float = REFRESH_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._reader = reader
        self._follow = follow
        self._refresh_s = refresh_s
        self._monotonic = monotonic
        self._lock = threading.Lock()  # the refreshing thread writes, the web server's threads read
        self._reading = threading.Lock()
        self._last: dict[Series, AlertEvent] = {}  # each series' newest event, cleared ones too
        self._active: list[AlertEvent] | None = None  # newest first, made again only after a change
        self._counts: dict[str, int] = {}
        self._newest: datetime | None = None
        self._following = False  # the store was read at the last refresh
        self._filled_at: float | None = None
        self._background = False
        self._error = ""

    def refresh(self) -> int:
        """Apply the events committed since the last refresh; how many there were."""
        with self._reading:  # the thread, or a page that found it stale: one reader of the file at once
            return self._refresh()

    def _refresh(self) -> int:
        found = None
        if self._follow is not None:
            try:
                found = self._follow.read()
            except (sqlite3.Error, OSError) as exc:
                if str(exc) != self._error:  # once per problem, not every second
                    log.warning(
                        "the dashboard cannot read %s (%s); asking the database", self._follow.path, exc
                    )
                self._error = str(exc)
        with self._lock:
            self._filled_at = self._monotonic()
            self._following = found is not None
            if found is None:
                return 0
            if found.whole:
                self._last, self._newest = {}, None
            for doc in found.docs:
                try:
                    self._keep(as_recorded(doc))
                except (KeyError, TypeError, ValueError) as exc:  # not an engine's event: skipped, said
                    log.warning("alert event %s: cannot read it (%s)", doc.get("id"), exc)
            if found.docs or found.whole:
                self._active = None
            return len(found.docs)

    def _keep(self, e: AlertEvent) -> None:
        """The newest event of its series; at the same time the later one, as InfluxDB keeps it."""
        key = (e.metric, e.node, e.rule, e.site)
        was = self._last.get(key)
        if was is None or e.time >= was.time:
            self._last[key] = e
        if self._newest is None or e.time > self._newest:
            self._newest = e.time

    def refresh_in_background(self) -> threading.Thread:
        self._background = True
        return _every(self._refresh_s, self.refresh, "kept-alerts", "the active alerts")

    def _kept(self, now: datetime) -> tuple[list[AlertEvent], dict[str, int]] | None:
        """Every active alert, newest first, and their count per site; None: ask the reader."""
        stale_after = self._refresh_s * (3 if self._background else 1)
        if self._filled_at is None or self._monotonic() - self._filled_at > stale_after:
            self.refresh()
        with self._lock:
            if not self._following or (self._newest is not None and now < self._newest):
                return None  # no store here, or an event after `now`: only the database knows `now`
            if self._active is None:
                # newest first; at the same time the series in InfluxDB's order under ORDER BY time DESC
                newest = sorted(self._last.items(), key=lambda kv: (kv[1].time, kv[0]), reverse=True)
                self._active = [e for _, e in newest if e.state != "cleared"]
                self._counts = per_site(self._active)
            return self._active, self._counts

    def active(self, now: datetime, *, site: str | None = None, node: str | None = None) -> list[AlertEvent]:
        kept = self._kept(now)
        if kept is None:
            return self._reader.active_alerts(now, site=site, node=node)
        return [e for e in kept[0] if (site is None or e.site == site) and (node is None or e.node == node)]

    def with_counts(self, now: datetime) -> tuple[list[AlertEvent], dict[str, int]]:
        """Every active alert, newest first, and how many each site has (the overview's)."""
        kept = self._kept(now)
        if kept is not None:
            return list(kept[0]), dict(kept[1])
        active = self._reader.active_alerts(now)
        return active, per_site(active)


def per_site(alerts: list[AlertEvent]) -> dict[str, int]:
    """How many of these alerts each site has."""
    counts: dict[str, int] = {}
    for e in alerts:
        counts[e.site] = counts.get(e.site, 0) + 1
    return counts


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
            kept = self._means  # read key by key: a copy of every node's means costs per fleet
            out = {k: found[k] if k in found else kept[k] for k in keys if k in found or k in kept}
        return out
