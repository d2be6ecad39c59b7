"""The standards' own indicators, per node and metric: per month and per year the days over each
24-hour limit, the annual mean against the annual limit and the percentile forms of the 24-hour
limits, each with the data-capture rule it follows and the share of days it rests on.

They are computed from the daily means the report already shows (their query is printed under
each daily table), with the rules held in gateway/standards.py, so a regulator can redo each one
by hand from that table. A year the period covers only in part is still shown, with the share of
its days it rests on, and is judged only when that share meets the standard's rule.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from contract.figures import Comparison, exceeds
from gateway.report.model import DailyMean, MetricSection
from gateway.standards import Limit, Standard, percentile_rank


@dataclass(frozen=True, slots=True)
class DaysOver:
    limit: Limit
    days: int


@dataclass(frozen=True, slots=True)
class Month:
    month: datetime  # first day, 00:00 UTC
    days: int  # days in the month
    valid: int  # days whose mean counts (the standard's day capture)
    over: list[DaysOver]

    @property
    def share(self) -> float:
        return self.valid / self.days


@dataclass(frozen=True, slots=True)
class AnnualMean:
    limit: Limit
    mean: float | None
    is_judged: bool  # the year meets the standard's capture rule
    comparison: Comparison

    @property
    def is_over(self) -> bool:
        return (
            self.is_judged and self.mean is not None and exceeds(self.mean, self.limit.value, self.comparison)
        )


@dataclass(frozen=True, slots=True)
class PercentileForm:
    limit: Limit  # the 24-hour limit it is compared with
    percentile: int
    rank: int  # 1: the highest valid daily mean
    value: float | None
    is_judged: bool
    comparison: Comparison

    @property
    def is_over(self) -> bool:
        return (
            self.is_judged
            and self.value is not None
            and exceeds(self.value, self.limit.value, self.comparison)
        )


@dataclass(frozen=True, slots=True)
class Year:
    year: int
    days: int  # 365 or 366
    valid: int
    is_judged: bool  # enough valid days (in each quarter, for a standard that averages quarters)
    over: list[DaysOver]
    annual: list[AnnualMean]
    percentiles: list[PercentileForm]
    quarter_shares: tuple[float, ...] = ()  # for a standard judging each quarter: their shares

    @property
    def share(self) -> float:
        return self.valid / self.days

    @property
    def short_quarter(self) -> tuple[int, float] | None:
        """The quarter (1-4) with the smallest share of valid days, when quarters are judged."""
        if not self.quarter_shares:
            return None
        q = min(range(4), key=lambda i: self.quarter_shares[i])
        return q + 1, self.quarter_shares[q]


@dataclass(frozen=True, slots=True)
class Indicators:
    node: str
    metric: str
    standard: Standard
    months: list[Month]
    years: list[Year]


def indicators(
    sections: list[MetricSection], standards: list[Standard], start: datetime, end: datetime
) -> list[Indicators]:
    """Months and years are those the period touches, with or without data."""
    touched = _months_touched(start, end)
    out = []
    for section in sections:
        for standard in standards:
            limits = [lim for lim in standard.limits if lim.metric is section.metric]
            if not limits:
                continue
            valid = [
                d
                for d in section.daily
                if d.mean is not None and d.expected and d.count / d.expected >= standard.day_capture
            ]
            out.append(
                Indicators(
                    section.node,
                    section.metric.value,
                    standard,
                    _months(touched, valid, limits, standard.comparison),
                    _years(touched, valid, limits, standard),
                )
            )
    return out


def _over(days: list[DailyMean], limits: list[Limit], comparison: Comparison) -> list[DaysOver]:
    return [
        DaysOver(lim, sum(1 for d in days if exceeds(d.mean or 0.0, lim.value, comparison)))
        for lim in limits
        if lim.average == "24h"
    ]


def _months_touched(start: datetime, end: datetime) -> list[tuple[int, int]]:
    last = end - timedelta(milliseconds=1)
    y, m, out = start.year, start.month, []
    while (y, m) <= (last.year, last.month):
        out.append((y, m))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    return out


def _months(
    months: list[tuple[int, int]], valid: list[DailyMean], limits: list[Limit], comparison: Comparison
) -> list[Month]:
    out = []
    for y, m in months:
        mine = [d for d in valid if (d.start.year, d.start.month) == (y, m)]
        out.append(
            Month(
                datetime(y, m, 1, tzinfo=UTC),
                calendar.monthrange(y, m)[1],
                len(mine),
                _over(mine, limits, comparison),
            )
        )
    return out


def _quarter(d: DailyMean) -> int:
    return (d.start.month - 1) // 3


def _quarter_days(year: int, q: int) -> int:
    return sum(calendar.monthrange(year, m)[1] for m in range(3 * q + 1, 3 * q + 4))


def _years(
    months: list[tuple[int, int]], valid: list[DailyMean], limits: list[Limit], standard: Standard
) -> list[Year]:
    out = []
    for year in sorted({y for y, _ in months}):
        mine = [d for d in valid if d.start.year == year]
        means = [d.mean or 0.0 for d in mine]
        days = 366 if calendar.isleap(year) else 365
        if standard.annual_from == "quarters":
            quarters = [[d.mean or 0.0 for d in mine if _quarter(d) == q] for q in range(4)]
            shares = tuple(len(qs) / _quarter_days(year, q) for q, qs in enumerate(quarters))
            judged = all(share >= standard.year_capture for share in shares)
            # 40 CFR 50 Appendix N 4.4: the annual mean is the mean of the quarterly means
            filled = [sum(qs) / len(qs) for qs in quarters if qs]
            mean = sum(filled) / len(filled) if filled else None
        else:
            shares = ()
            judged = len(mine) / days >= standard.year_capture
            mean = sum(means) / len(means) if means else None
        ranked = sorted(means, reverse=True)
        forms = []
        for lim in limits:
            if lim.average == "24h" and lim.percentile is not None:
                rank = percentile_rank(len(ranked), lim.percentile, standard.ranking) if ranked else 0
                value = ranked[rank - 1] if ranked else None
                forms.append(PercentileForm(lim, lim.percentile, rank, value, judged, standard.comparison))
        out.append(
            Year(
                year,
                days,
                len(mine),
                judged,
                _over(mine, limits, standard.comparison),
                [AnnualMean(lim, mean, judged, standard.comparison) for lim in limits if lim.average == "1y"],
                forms,
                shares,
            )
        )
    return out
