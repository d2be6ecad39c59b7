"""The facts the pages and the API both show, computed once: a summary per node and chart data.

Everything here takes `now` from the caller (the app's injected clock), so a test can look at a
simulated moment.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from gateway import aqi
from gateway.stores.reader import Latest, Reader, Series
from gateway.web.kept import HourlyMeans
from gateway.web.levels import Level, LimitLine, aqi_level, limit_lines, turbidity_level
from gateway.web.status import NodeStatus, StatusBoard

T = TypeVar("T")


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
    known: Known | None = None  # without a NowCast: the category of what is known
    latest_level: Level | None = None  # the latest PM2.5 reading's own category (no AQI number)
    is_spike: bool = False  # the latest reading says much worse than the NowCast: the card says both


@dataclass(frozen=True, slots=True)
class Known:
    """The AQI category of the last full hour's mean, or of the latest reading, when there is no
    NowCast yet (a new site, after an outage): at 154.6 µg/m³ a card must not stay grey. `basis` is
    "hour" or "reading" (the card says which); no AQI number, which the EPA defines on the NowCast."""

    level: Level
    basis: str
    pm2_5: float


def known_category(hourly: list[float | None] | None, latest_pm2_5: float | None) -> Known | None:
    """What the card shows without a NowCast: the latest full hour's mean if that hour has data,
    else the latest reading's value; None only with neither."""
    if hourly and hourly[0] is not None:
        return Known(aqi_level(hourly[0])[0], "hour", hourly[0])
    if latest_pm2_5 is not None:
        return Known(aqi_level(latest_pm2_5)[0], "reading", latest_pm2_5)
    return None


SPIKE_CATEGORIES = 2
"""How many AQI categories the latest reading must be above the NowCast's for the card to show it."""
_CALM = ("good", "moderate")


def is_spike(nowcast: float, latest_pm2_5: float, limits: Sequence[float]) -> bool:
    """Whether the latest PM2.5 reading tells what a NowCast lagging a sudden plume does not yet: its
    own category is `SPIKE_CATEGORIES` or more above the NowCast's, or, while the NowCast is Good or
    Moderate, it is over one of `limits` (µg/m³, the chosen standards' short-term PM2.5 limits) that
    the NowCast is not over. The NowCast weighs 12 hours, so one reading at 154.6 µg/m³ after 11
    hours at 10 leaves it at 10.0: a card saying only "Moderate" then would mislead."""
    now_cat, latest_cat = aqi.category(nowcast), aqi.category(latest_pm2_5)
    gap = aqi.CATEGORY_KEYS.index(latest_cat.key) - aqi.CATEGORY_KEYS.index(now_cat.key)
    over = any(nowcast <= limit < latest_pm2_5 for limit in limits)  # "above": strictly over
    return gap >= SPIKE_CATEGORIES or (now_cat.key in _CALM and over)


def pm2_5_limits(standards: Sequence[str]) -> tuple[float, ...]:
    """The short-term (24 h and shorter) PM2.5 limits of `standards`, as the charts draw them: an
    annual mean's limit says nothing about one reading."""
    return tuple(sorted({line.value for line in limit_lines(list(standards), "pm2_5")}))


def is_offline(age_s: float, status: NodeStatus | None, offline_after_s: int) -> bool:
    """Silent for longer than `offline_after_s`, or its retained status says offline (or stopped
    as planned)."""
    return age_s > offline_after_s or (status is not None and status.state != "online")


HOURLY_BY_NAME = 200
"""Up to this many nodes, the NowCast's hourly means are asked for by name; more, for every node."""


def hourly_for(
    reader: Reader, latest: list[Latest], now: datetime, hourly_cache: HourlyMeans | None = None
) -> dict[tuple[str, str], list[float | None]]:
    """The NowCast's hourly PM2.5 means (the 12 full hours before the current hour) of the nodes
    in `latest` that measure PM2.5, from `hourly_cache` where it has them: read for these nodes
    only, so a page of a thousand-node fleet costs what a page costs."""
    hour = now.replace(minute=0, second=0, microsecond=0)
    keys = [(r.site, r.node) for r in latest if "pm2_5" in r.values]

    def fetch(keys: list[tuple[str, str]]) -> dict[tuple[str, str], list[float | None]]:
        sites = {s for s, _ in keys}
        return reader.hourly_means(
            "pm2_5",
            hour - TICK,
            align=-TICK,
            site=next(iter(sites)) if len(sites) == 1 else None,
            nodes=sorted({n for _, n in keys}) if len(keys) <= HOURLY_BY_NAME else None,
        )

    if not keys:
        return {}
    if hourly_cache is None:
        return fetch(keys)
    return hourly_cache.get(fetch, hour, keys)


def summarise(
    r: Latest,
    hours: list[float | None] | None,
    status: NodeStatus | None,
    now: datetime,
    offline_after_s: int,
    *,
    nowcast: bool = True,
    limits: Sequence[float] = (),
) -> NodeSummary:
    """One node's summary from its latest reading, its NowCast's hourly means (None: none, or not
    asked) and its retained status; `limits`: the PM2.5 limits a spike is judged by (`is_spike`)."""
    age = (now - r.time).total_seconds()
    offline = is_offline(age, status, offline_after_s)
    nc = aqi.nowcast(hours) if hours is not None else None
    aqi_lv, aqi_n = aqi_level(nc) if nc is not None else (None, None)
    pm = r.values.get("pm2_5")
    known = known_category(hours, pm) if nc is None and nowcast else None
    latest_lv = aqi_level(pm)[0] if pm is not None and nowcast else None
    spike = nc is not None and pm is not None and is_spike(nc, pm, limits)
    turb = r.values.get("turbidity")
    return NodeSummary(
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
        known,
        latest_lv,
        spike,
    )


def summaries(
    reader: Reader,
    board: StatusBoard,
    now: datetime,
    offline_after_s: int,
    site: str | None = None,
    *,
    node: str | None = None,
    latest: list[Latest] | None = None,
    nowcast: bool = True,
    hourly_cache: HourlyMeans | None = None,
    limits: Sequence[float] = (),
) -> list[NodeSummary]:
    """Every node with a stored reading (or just `node`, or the `latest` given: a page of them),
    with its freshness, status, NowCast category and turbidity band. NowCast uses the 12 full hours
    before the current hour (`hourly_for`); `nowcast` False skips them (the node list); `limits`:
    as `summarise`."""
    if latest is None:
        latest = reader.latest(now, site=site, node=node)
    hourly = hourly_for(reader, latest, now, hourly_cache) if nowcast else {}
    return [
        summarise(
            r,
            hourly.get((r.site, r.node)),
            board.get(r.site, r.node),
            now,
            offline_after_s,
            nowcast=nowcast,
            limits=limits,
        )
        for r in latest
    ]


@dataclass(frozen=True, slots=True)
class SiteSummary:
    """One line of the overview's table of sites: what a thousand cards would not let anyone see."""

    site: str
    nodes: int
    offline: int
    alerts: int
    last: datetime


def site_summaries(
    latest: list[Latest], board: StatusBoard, now: datetime, offline_after_s: int, alerting: Mapping[str, int]
) -> list[SiteSummary]:
    """Per site: its nodes, how many are offline, its active alerts (`alerting`: how many per
    site), its newest reading. One pass of plain counters over the fleet, the overview's one part
    whose work grows with it: 0.34 ms at 1,000 nodes, where a dataclass and a status lock per
    node took 1.6 ms."""
    status = board.all()  # one lock, not one per node
    stale = now - timedelta(seconds=offline_after_s)
    nodes: Counter[str] = Counter()
    offline: Counter[str] = Counter()
    last: dict[str, datetime] = {}
    for r in latest:
        nodes[r.site] += 1
        st = status.get((r.site, r.node))
        if r.time < stale or (st is not None and st.state != "online"):  # as is_offline
            offline[r.site] += 1
        if r.site not in last or r.time > last[r.site]:
            last[r.site] = r.time
    return [SiteSummary(k, nodes[k], offline[k], alerting.get(k, 0), last[k]) for k in sorted(nodes)]


@dataclass(frozen=True, slots=True)
class Paged(Generic[T]):
    """A slice of a sorted list and where it sits in the whole."""

    items: list[T]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None

    @property
    def prev_offset(self) -> int | None:
        return max(self.offset - self.limit, 0) if self.offset > 0 else None


def page_of(items: list[T], offset: int, limit: int) -> Paged[T]:
    """`limit` items from `offset`."""
    return Paged(items[offset : offset + limit], len(items), offset, limit)


def paged(latest: list[Latest], offset: int, limit: int, search: str = "") -> Paged[Latest]:
    """The nodes whose id contains `search`, from `offset`, at most `limit`."""
    return page_of([r for r in latest if search in r.node] if search else latest, offset, limit)


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


def overlay(
    reader: Reader, site: str, reference: str, chart: Chart, now: datetime, span: timedelta
) -> list[float | None]:
    """The reference node's means in `chart`'s buckets (None where it has none), to draw over it."""
    s = bucketed(reader, site, reference, [chart.metric], now - span, now, chart.every_s)
    by_t = dict(zip((int(t.timestamp()) for t in s.times), s.values.get(chart.metric, []), strict=True))
    return [by_t.get(t) for t in chart.times]
