"""Air-quality limits of the standards minewatch knows, as data, with their sources.

Used by the alert presets and by the regulators' report, so a limit is written down exactly once.
Each limit is a mean over `average` (the averaging period the standard defines) that must not be
exceeded. Check a number against its source before changing it, and cite the source in the
table of docs/alerts.md ("Presets and their sources"), where each standard's source is written.

Besides the numbers, a standard says how they are judged, and the report follows it rather than a
rule of its own: how a value exceeds (all three say a mean must "not exceed" the limit, so only a
value strictly above it exceeds; `comparison`), which days count (a daily mean from at least 75 %
of the day's readings), when a year is judged at all (75 % of its days, or of each quarter's for
US EPA), how the annual mean is formed (US EPA: the mean of the four quarterly means, 40 CFR 50
Appendix N 4.4; the others: the mean of the valid daily means) and the percentile forms of the
24-hour limits (US EPA: the 98th percentile of daily means, ranked by Appendix N Table 1; WHO 2021:
the 99th percentile, defined in the guideline's Table 0.1 note, taken here as the nearest rank).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from contract.figures import Comparison
from contract.metrics import Metric

Ranking = Literal["nearest-rank", "epa-table-1"]


@dataclass(frozen=True, slots=True)
class Limit:
    metric: Metric
    average: str  # "24h", "1y", ...: the averaging period, in the rules' duration syntax
    value: float  # in the metric's unit (µg/m³ for PM)
    percentile: int | None = None  # 24-hour limits judged on a percentile of the year's daily means


@dataclass(frozen=True, slots=True)
class Standard:
    key: str  # the preset name in gateway.toml
    title: str  # how a message names it: "the WHO 2021 guideline"
    source: str
    limits: tuple[Limit, ...]
    comparison: Comparison = "above"
    day_capture: float = 0.75  # a daily mean counts when the day holds this share of its readings
    year_capture: float = (
        0.75  # a year (or each quarter, `annual_from="quarters"`) is judged from this share of days
    )
    annual_from: Literal["days", "quarters"] = "days"
    ranking: Ranking = "nearest-rank"  # how the percentile form picks its daily mean


def percentile_rank(n: int, percentile: int, ranking: Ranking) -> int:
    """Which daily mean, counted from the highest (1), is the year's `percentile`-th percentile of
    `n` valid days. US EPA's Table 1 (40 CFR 50 Appendix N): the 1st highest for 1-50 days, the 2nd
    for 51-100, ..., the 8th for 351-366. Nearest rank: the smallest value that at least
    `percentile` % of the days are at or below."""
    if ranking == "epa-table-1":
        return max(1, math.ceil(n / 50))
    return n - max(1, math.ceil(percentile / 100 * n)) + 1


STANDARDS: dict[str, Standard] = {
    s.key: s
    for s in (
        Standard(
            key="who-2021",
            title="WHO 2021 air quality guideline",
            source="WHO global air quality guidelines (2021), Table 0.1 (ISBN 978-92-4-003422-8)",
            limits=(
                Limit(Metric.PM2_5, "24h", 15.0, percentile=99),
                Limit(Metric.PM10, "24h", 45.0, percentile=99),
                Limit(Metric.PM2_5, "1y", 5.0),
                Limit(Metric.PM10, "1y", 15.0),
            ),
        ),
        Standard(
            key="us-epa",
            title="US EPA NAAQS",
            source="40 CFR Part 50 (PM2.5 24-hour 35 µg/m³, 2006; annual 9.0 µg/m³, 2024; "
            "PM10 24-hour 150 µg/m³)",
            limits=(
                Limit(Metric.PM2_5, "24h", 35.0, percentile=98),
                Limit(Metric.PM10, "24h", 150.0),
                Limit(Metric.PM2_5, "1y", 9.0),
            ),
            annual_from="quarters",
            ranking="epa-table-1",
        ),
        Standard(
            key="mns-4585-2016",
            title="MNS 4585:2016",
            source="Mongolian National Standard MNS 4585:2016, Air quality. General technical "
            "requirements, Table 1",
            limits=(
                Limit(Metric.PM2_5, "24h", 50.0),
                Limit(Metric.PM10, "24h", 100.0),
                Limit(Metric.PM2_5, "1y", 25.0),
                Limit(Metric.PM10, "1y", 50.0),
            ),
        ),
    )
}
