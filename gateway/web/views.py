"""The facts the pages and the API both show, computed once: a summary per node and chart data.

Everything here takes `now` from the caller (the app's injected clock), so a test can look at a
simulated moment.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from gateway import aqi
from gateway.stores.reader import Latest, Reader, Series
from gateway.web.levels import Level, LimitLine, aqi_level, limit_lines, turbidity_level
from gateway.web.status import StatusBoard


@dataclass(frozen=True, slots=True)
class NodeSummary:
    site: str
    node: str
    latest: Latest
    age_s: float
    is_offline: bool
    state: str | None  # from the retained status topic, when known
    lat: float | None
    lon: float | None
    nowcast: float | None = None  # PM2.5 NowCast, µg/m³
    aqi: int | None = None
    aqi_level: Level | None = None
    turbidity_level: Level | None = None


def summaries(
    reader: Reader, board: StatusBoard, now: datetime, offline_after_s: int, site: str | None = None
) -> list[NodeSummary]:
    """Every node with a stored reading, with its freshness, status, NowCast category and turbidity
    band. NowCast uses the 12 full hours before the current hour."""
    latest = reader.latest(now, site=site)
    hour = now.replace(minute=0, second=0, microsecond=0)
    hourly = (
        reader.hourly_means("pm2_5", hour - TICK, align=-TICK)
        if any("pm2_5" in r.values for r in latest)
        else {}
    )
    out = []
    for r in latest:
        status = board.get(r.site, r.node)
        age = (now - r.time).total_seconds()
        offline = age > offline_after_s or (status is not None and status.state == "offline")
        nc = aqi.nowcast(hourly[(r.site, r.node)]) if (r.site, r.node) in hourly else None
        aqi_lv, aqi_n = aqi_level(nc) if nc is not None else (None, None)
        turb = r.values.get("turbidity")
        out.append(
            NodeSummary(
                r.site,
                r.node,
                r,
                age,
                offline,
                status.state if status else None,
                status.lat if status else None,
                status.lon if status else None,
                nc,
                aqi_n,
                aqi_lv,
                turbidity_level(turb) if turb is not None else None,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Chart:
    metric: str
    every_s: int
    times: list[int]  # epoch seconds, as uPlot wants
    values: list[float | None]
    limits: list[LimitLine]
    flagged: list[int] = field(default_factory=list)  # epoch seconds of flagged readings


TICK = timedelta(milliseconds=1)


def half_open(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The reader's (start, end] for the dashboard's [start, end): its pages and API have always
    read periods that way (docs/api.md), and stored times are whole milliseconds."""
    return start - TICK, end - TICK


def bucketed(
    reader: Reader, site: str, node: str, metrics: list[str], start: datetime, end: datetime, every_s: int
) -> Series:
    """The dashboard's buckets: [t, t + every) on round times, in [start, end), as its charts and
    API have always shown them (a reading stamped `now` waits for the next refresh). In the reader's
    terms (start < time <= end, buckets (b, b + every]) that is everything shifted by a millisecond.

    Over more than a day in whole hours (the week chart, a month, a year) the buckets are the
    roll-ups' instead, (b, b + every] of whole hours or days (the period still [start, end)), so
    the answer does not read a year of raw readings (docs/api.md)."""
    if every_s % 3600 == 0 and end - start > timedelta(days=1):
        return reader.series(site, node, metrics, start - TICK, end - TICK, every_s)
    s = reader.series(site, node, metrics, start - TICK, end - TICK, every_s, align=-TICK)
    return Series(s.every_s, [t + TICK for t in s.times], s.values)


def charts(
    reader: Reader, site: str, node: str, now: datetime, span: timedelta, every_s: int, standards: list[str]
) -> list[Chart]:
    """One chart per metric with any data in the span; flagged readings marked on each."""
    start = now - span
    series = bucketed(reader, site, node, reader.metric_fields(), start, now, every_s)
    flagged = [int(t.timestamp()) for t, _ in reader.flagged(site, node, *half_open(start, now))]
    times = [int(t.timestamp()) for t in series.times]
    return [
        Chart(m, every_s, times, vals, limit_lines(standards, m), flagged)
        for m, vals in series.values.items()
        if any(v is not None for v in vals)
    ]


def age_text(age_s: float) -> tuple[str, int]:
    """The i18n key and number for "5 min ago"."""
    if age_s < 60:
        return "fresh.just_now", 0
    if age_s < 3600:
        return "fresh.minutes", int(age_s // 60)
    if age_s < 86400 * 2:
        return "fresh.hours", int(age_s // 3600)
    return "fresh.days", int(age_s // 86400)
