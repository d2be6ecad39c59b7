"""What the regulators' report shows, as plain values: filled by gateway.report.data, drawn by
gateway.report.plots and written by gateway.report.render."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from contract.metrics import Metric
from gateway.standards import Limit, Standard

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


@dataclass(frozen=True, slots=True)
class Gap:
    start: datetime  # last reading before (or the period start)
    end: datetime  # first reading after (or the period end)
    missing_seq: int  # readings the node made but the database lacks (lost, not offline)
    offline: bool  # the node reported itself offline during the gap


@dataclass
class NodeSection:
    node: str
    interval_s: int
    days: list[Day] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    missing_seq: int = 0
    offline: list[tuple[datetime, datetime | None]] = field(default_factory=list)


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


@dataclass
class MetricSection:
    node: str
    metric: Metric
    daily: list[DailyMean]
    limits: list[tuple[Standard, Limit]]
    max_reading: tuple[float, datetime] | None
    hourly: list[tuple[datetime, float]]
    episodes: list[Episode]

    def days_over(self, limit: Limit) -> list[DailyMean]:
        """Complete days whose mean is above the limit (an incomplete day is not judged)."""
        return [d for d in self.daily if d.is_complete and d.mean is not None and d.mean > limit.value]

    @property
    def incomplete_days(self) -> int:
        return sum(1 for d in self.daily if not d.is_complete)

    @property
    def max_daily(self) -> DailyMean | None:
        complete = [d for d in self.daily if d.is_complete and d.mean is not None]
        return max(complete, key=lambda d: d.mean or 0.0) if complete else None


@dataclass(frozen=True, slots=True)
class Episode:
    """One exceedance from the `alert` measurement: raised … cleared for one rule at one node."""

    node: str
    rule: str
    metric: str
    start: datetime | None  # None: raised before the report period
    end: datetime | None  # None: still active at the end of the period
    peak: float | None
    limit: float | None
    average: str
    severity: str
    late: bool
    standard: str  # the standard whose preset made the rule (its key prefixes the rule name), or ""


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
