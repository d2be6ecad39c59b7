"""What the regulators' report shows, as plain values: filled by gateway.report.data, drawn by
gateway.report.plots and written by gateway.report.render."""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from contract.figures import Comparison, exceeds
from contract.metrics import Metric
from gateway.config import NodeInfo
from gateway.observations.records import Observation
from gateway.standards import Limit, Standard

if TYPE_CHECKING:
    from gateway.report.indicators import Indicators

COMPLETE = 0.75
"""A period mean counts only when it holds this share of the expected readings (the usual rule)."""
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Day:
    start: datetime
    readings: int
    expected: int

    @property
    def completeness(self) -> float:
        return min(1.0, self.readings / self.expected) if self.expected else 0.0

    @property
    def month(self) -> str:
        return self.start.strftime("%Y-%m")


@dataclass(frozen=True, slots=True)
class Gap:
    start: datetime  # last reading before (or the period start)
    end: datetime  # first reading after (or the period end)
    missing_seq: int  # readings the node made but the database lacks (lost, not offline)
    offline: bool  # the node reported itself offline during the gap


@dataclass(frozen=True, slots=True)
class MonthOfDays:
    """A month of a node's days, for the printed report of a long period (its days are attached)."""

    month: str  # YYYY-MM
    days: int
    readings: int
    expected: int
    incomplete: int  # days under COMPLETE

    @property
    def completeness(self) -> float:
        return min(1.0, self.readings / self.expected) if self.expected else 0.0


@dataclass
class NodeSection:
    node: str
    interval_s: int
    days: list[Day] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    missing_seq: int = 0
    offline: list[tuple[datetime, datetime | None]] = field(default_factory=list)

    def months(self) -> list[MonthOfDays]:
        by: dict[str, list[Day]] = {}
        for d in self.days:
            by.setdefault(d.month, []).append(d)
        return [
            MonthOfDays(
                m,
                len(ds),
                sum(d.readings for d in ds),
                sum(d.expected for d in ds),
                sum(1 for d in ds if d.completeness < COMPLETE),
            )
            for m, ds in by.items()
        ]


@dataclass(frozen=True, slots=True)
class DailyMean:
    start: datetime
    mean: float | None
    count: int
    expected: int
    max: float | None

    @property
    def completeness(self) -> float:
        return min(1.0, self.count / self.expected) if self.expected else 0.0

    @property
    def is_complete(self) -> bool:
        return self.completeness >= COMPLETE

    @property
    def month(self) -> str:
        return self.start.strftime("%Y-%m")


@dataclass(frozen=True, slots=True)
class MonthOfMeans:
    """A month of a metric's daily means, for the printed report of a long period."""

    month: str  # YYYY-MM
    days: int  # days with data
    complete: int  # days judged
    top: DailyMean | None  # the highest judged daily mean
    max_reading: float | None  # the highest reading of the month's days
    over: list[int]  # judged days over each of the section's limits, in their order


@dataclass(frozen=True, slots=True)
class HourlyMeans:
    """A section's hourly means, oldest first, as two arrays: epoch seconds of each hour's end and
    its mean. Iterates as (time, mean) pairs."""

    times_s: array[float] = field(default_factory=lambda: array("d"))
    values: array[float] = field(default_factory=lambda: array("d"))

    @classmethod
    def of(cls, hours: Iterable[tuple[datetime, float]]) -> HourlyMeans:
        out = cls()
        for at, value in hours:
            out.times_s.append(at.timestamp())
            out.values.append(value)
        return out

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[tuple[datetime, float]]:
        for at, value in zip(self.times_s, self.values, strict=True):
            yield datetime.fromtimestamp(at, UTC), value


@dataclass(frozen=True, slots=True)
class Band:
    """A long period's hourly means as its plot draws them: per group of `hours` hours (the hours
    a pixel of the plot spans), the epoch seconds of the group's middle and its lowest and highest
    hourly mean, oldest first. A year is 876 groups a node and metric, not 8,760 hours, asked of
    the database's roll-ups (levels.py)."""

    hours: int
    times_s: array[float] = field(default_factory=lambda: array("d"))
    lows: array[float] = field(default_factory=lambda: array("d"))
    highs: array[float] = field(default_factory=lambda: array("d"))

    def __len__(self) -> int:
        return len(self.lows)


@dataclass
class MetricSection:
    node: str
    metric: Metric
    daily: list[DailyMean]
    limits: list[tuple[Standard, Limit]]
    max_reading: tuple[float, datetime] | None
    hourly: HourlyMeans  # empty when `band` holds them
    episodes: list[Episode]
    band: Band | None = None  # a period of more hours than the plot has pixels

    def days_over(self, limit: Limit, comparison: Comparison = "above") -> list[DailyMean]:
        """Complete days whose mean exceeds the limit by the standard's rule (an incomplete day is
        not judged)."""
        return [
            d
            for d in self.daily
            if d.is_complete and d.mean is not None and exceeds(d.mean, limit.value, comparison)
        ]

    def over_on(self, day: DailyMean) -> list[Standard]:
        """The standards whose limit the day's mean exceeds (a table row's "Over"):
        looked up, since asking days_over for each of a year's days took the report a minute."""
        return self._over_by_day.get(day.start, [])

    @cached_property
    def _over_by_day(self) -> dict[datetime, list[Standard]]:
        out: dict[datetime, list[Standard]] = {}
        for standard, limit in self.limits:
            for d in self.days_over(limit, standard.comparison):
                out.setdefault(d.start, []).append(standard)
        return out

    def months(self) -> list[MonthOfMeans]:
        by: dict[str, list[DailyMean]] = {}
        for d in self.daily:
            by.setdefault(d.month, []).append(d)
        out = []
        for m, ds in by.items():
            judged = [d for d in ds if d.is_complete and d.mean is not None]
            highs = [d.max for d in ds if d.max is not None]
            starts = {d.start for d in ds}
            over = [
                sum(1 for d in self.days_over(lim, standard.comparison) if d.start in starts)
                for standard, lim in self.limits
            ]
            top = max(judged, key=lambda d: d.mean or 0.0) if judged else None
            out.append(MonthOfMeans(m, len(ds), len(judged), top, max(highs) if highs else None, over))
        return out

    @property
    def incomplete_days(self) -> int:
        return sum(1 for d in self.daily if not d.is_complete)

    @property
    def max_daily(self) -> DailyMean | None:
        complete = [d for d in self.daily if d.is_complete and d.mean is not None]
        return max(complete, key=lambda d: d.mean or 0.0) if complete else None


@dataclass(frozen=True, slots=True)
class Episode:
    """One alert from the `alert` measurement, for one rule at one node.

    `start` is when the condition began and `end` when it ended: the first evaluation back within
    the limit (the alert's `ended`); `cleared` is when the alert system gave the all-clear, the
    rule's `clear_after` later. A report states what happened to the air, so the exceedance is
    start to end; the all-clear is shown beside it."""

    node: str
    rule: str
    metric: str
    start: datetime | None  # None: raised before the report period (and not stored with it)
    end: datetime | None  # None: still going on at the end of the period
    peak: float | None  # the alert's own stored peak
    limit: float | None
    average: str
    severity: str
    late: bool
    standard: Standard | None  # the standard whose preset made the rule (its key prefixes the rule)
    cleared: datetime | None = None
    highest_reading: float | None = None  # the database's highest reading from start to end
    kind: str = "threshold"  # the rule kind: threshold, nowcast, difference, offline, sensor_fault
    # what names the rule to a person (gateway.alerts.messages.rule_name): the event's message id
    # and parameters as stored, so the report says "PM2.5 24-hour mean, US EPA", not its id
    named: Mapping[str, Any] = field(default_factory=dict)

    @property
    def is_exceedance(self) -> bool:
        """An alert on a metric's value; an offline or a sensor-fault alert is not."""
        return self.kind not in ("offline", "sensor_fault")

    @property
    def comparison(self) -> Comparison:
        return self.standard.comparison if self.standard else "above"


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """A node's signing key as the gateway's trust registry holds it."""

    kid: str  # the key's fingerprint: the first 8 bytes of SHA-256 of the public key, in hex
    site: str
    node: str
    status: str
    created: datetime
    since: datetime | None


@dataclass(frozen=True, slots=True)
class About:
    """Who produced the report, and what the gateway knows of the nodes beyond the database."""

    operator: str | None = None
    gateway_id: str = ""
    nodes: tuple[NodeInfo, ...] = ()
    keys: tuple[KeyInfo, ...] = ()


@dataclass(frozen=True, slots=True)
class OfflinePeriod:
    """A time a node was not sending: from its own status (`source` "status", the broker's last
    will) or from an `offline` alert rule (`source` the rule). Readings stamped inside it cannot
    have arrived while it lasted: they came afterwards, from the node's outbox."""

    node: str
    source: str
    start: datetime
    end: datetime | None  # None: not back by the end of the period
    until: datetime  # `end`, or the period's end when it is None: what `duration` is measured to
    readings_inside: int  # readings stamped inside the period: they arrived late

    @property
    def duration_h(self) -> float:
        return (self.until - self.start).total_seconds() / 3600


@dataclass(frozen=True, slots=True)
class FieldVisit:
    """A maintenance visit in the period (measurement `maintenance`) and the readings it marks."""

    node: str
    kind: str
    at: datetime
    by: str
    note: str
    flag_from: datetime | None
    flag_to: datetime | None
    readings_marked: int  # readings stamped in (flag_from, flag_to]


@dataclass(frozen=True, slots=True)
class Calibration:
    node: str
    metric: str
    cal: str
    first: datetime
    last: datetime
    readings: int


@dataclass
class ReportData:
    site: str
    start: datetime
    end: datetime
    generated: datetime
    standards: list[Standard]
    nodes: list[NodeSection]
    metrics: list[MetricSection]
    episodes: list[Episode]
    calibrations: list[Calibration]
    uncalibrated: dict[tuple[str, str], int]
    firmware: list[tuple[str, str, datetime]]  # node, version, first seen
    signatures: dict[str, tuple[int, int]] | None  # node -> (signed, readings); None: no such field
    has_status: bool
    has_alerts: bool
    calibration_files: dict[str, CalibrationFile] = field(default_factory=dict)
    calibration_problems: list[str] = field(default_factory=list)
    queries: dict[str, list[str]] = field(default_factory=dict)  # section key -> InfluxQL
    offline: list[OfflinePeriod] = field(default_factory=list)
    requested_end: datetime | None = None  # the end asked for, when it was after `generated`
    indicators: list[Indicators] = field(default_factory=list)
    about: About = field(default_factory=lambda: About())
    node_info: list[NodeInfo] = field(default_factory=list)
    keys: list[KeyInfo] = field(default_factory=list)
    field_visits: list[FieldVisit] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)

    @property
    def total_readings(self) -> int:
        return sum(d.readings for n in self.nodes for d in n.days)

    def flag_count(self, flag: str) -> int:
        return sum(n.flags.get(flag, 0) for n in self.nodes)

    def flag_share(self, flag: str) -> float:
        total = self.total_readings
        return self.flag_count(flag) / total if total else 0.0

    @property
    def flags_seen(self) -> list[str]:
        return sorted({f for n in self.nodes for f in n.flags})

    @property
    def exceedances(self) -> list[Episode]:
        return [e for e in self.episodes if e.is_exceedance]

    @property
    def other_alerts(self) -> list[Episode]:
        return [e for e in self.episodes if not e.is_exceedance and e.kind != "offline"]


@dataclass(frozen=True, slots=True)
class CalibrationFile:
    """What a calibration id stands for, from a shipped preset or a file the operator handed over."""

    id: str
    where: str  # "preset" or the file's name
    description: str
    method: str
    source: str  # publication, reference instrument, co-location period
    valid: str
    n: int | None
    r2_after: float | None
    rmse_after: float | None
    # the same, as parts the report writes in its reader's language (the file's own words stay)
    publication: str = ""
    reference: str = ""
    at_site: str = ""
    colocated: tuple[str, str] | None = None
    valid_from: str = ""
    valid_to: str = ""
