"""The US EPA NowCast for PM2.5 and the AQI category it falls in.

NowCast (EPA, "Technical Assistance Document for the Reporting of Daily Air Quality", and AirNow's
NowCast description): from the last 12 hourly means c1 (most recent) ... c12,
w* = min/max of the available hours, w = max(w*, 0.5);
NowCast = sum(w^(i-1) * ci) / sum(w^(i-1)) over the hours present. At least two of the three most
recent hours must be present, otherwise there is no NowCast. Concentrations are truncated to 0.1.
AQI categories use the PM2.5 breakpoints as revised in 2024 (40 CFR Part 58 Appendix G).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Category:
    key: str  # stable id, used in rules: "good", "moderate", ...
    name: str  # for people
    low: float  # µg/m³, inclusive, PM2.5 (24-h / NowCast)
    colour: str  # the AirNow colour
    aqi_low: int
    aqi_high: int
    high: float  # µg/m³, inclusive upper breakpoint


CATEGORIES: tuple[Category, ...] = (
    Category("good", "Good", 0.0, "#00e400", 0, 50, 9.0),
    Category("moderate", "Moderate", 9.1, "#ffff00", 51, 100, 35.4),
    Category("usg", "Unhealthy for Sensitive Groups", 35.5, "#ff7e00", 101, 150, 55.4),
    Category("unhealthy", "Unhealthy", 55.5, "#ff0000", 151, 200, 125.4),
    Category("very-unhealthy", "Very Unhealthy", 125.5, "#8f3f97", 201, 300, 225.4),
    Category("hazardous", "Hazardous", 225.5, "#7e0023", 301, 500, 325.4),
)
CATEGORY_KEYS = tuple(c.key for c in CATEGORIES)


def nowcast(hourly: Sequence[float | None]) -> float | None:
    """NowCast from hourly means, most recent first (index 0 = the latest full hour); None = missing."""
    hours = list(hourly[:12])
    if sum(1 for c in hours[:3] if c is not None) < 2:
        return None
    present = [c for c in hours if c is not None]
    low, high = min(present), max(present)
    weight = 0.5 if high <= 0 else max(low / high, 0.5)
    num = den = 0.0
    for i, c in enumerate(hours):
        if c is None:
            continue
        num += weight**i * c
        den += weight**i
    return math.floor(num / den * 10) / 10


def category(pm25: float) -> Category:
    """The AQI category of a PM2.5 concentration (µg/m³), truncated to 0.1 as the EPA does."""
    c = math.floor(pm25 * 10) / 10
    for cat in CATEGORIES:
        if c <= cat.high:
            return cat
    return CATEGORIES[-1]


def aqi(pm25: float) -> int:
    """The AQI number by linear interpolation within the category's breakpoints."""
    c = math.floor(pm25 * 10) / 10
    cat = category(c)
    if c > cat.high:  # beyond the table: extend the last segment
        return round(cat.aqi_high + (c - cat.high) * (cat.aqi_high - cat.aqi_low) / (cat.high - cat.low))
    return round((cat.aqi_high - cat.aqi_low) / (cat.high - cat.low) * (c - cat.low) + cat.aqi_low)
