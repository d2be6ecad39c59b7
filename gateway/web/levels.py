"""How a value is judged in colour on the overview: the AQI category for PM2.5 (from the NowCast of
hourly means, gateway/aqi.py) and a turbidity band for water.

The turbidity bands are for reading the page, not limits; each edge has a source (docs/api.md,
"Turbidity bands"):
- 1 NTU: below it, as the WHO asks of water about to be disinfected (WHO, "Water quality and health:
  review of turbidity", technical brief WHO/FWC/WSH/17.01, 2017; Guidelines for drinking-water
  quality, 4th ed.);
- 4 NTU: from here turbidity is visible to the eye (the same brief: "turbidities of 4 NTU and above
  being visible");
- 25 NTU: the increase over background the Idaho aquatic-life criterion allows for at most ten days
  (IDAPA 58.01.02.250.02.e; 50 NTU at any moment);
- 50 and 250 NTU: the background tiers of the Idaho domestic-supply rule the alerts use
  (IDAPA 58.01.02.252.01.b).
So 5 NTU (visible) and 35 NTU (past the ten-day allowance) are in different bands. Legal limits on
rivers are differences from upstream, which the alerts check; the limit lines on the node charts
come from gateway/standards.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from gateway import aqi
from gateway.standards import STANDARDS


@dataclass(frozen=True, slots=True)
class Level:
    key: str  # i18n key suffix and CSS class
    colour: str
    text_colour: str


TURBIDITY_BANDS: tuple[tuple[float, Level], ...] = (
    (1.0, Level("clear", "#2e9e44", "#fff")),
    (4.0, Level("slightly-cloudy", "#9bc53d", "#000")),
    (25.0, Level("cloudy", "#e0c000", "#000")),
    (50.0, Level("very-cloudy", "#f0a000", "#000")),
    (250.0, Level("muddy", "#d46a00", "#fff")),
    (float("inf"), Level("very-muddy", "#7e0023", "#fff")),
)
_DARK_TEXT = {"good", "moderate", "usg"}
ADVICE_SOURCE_URL = (  # the spelling "quailty" is the EPA's own address
    "https://document.airnow.gov/technical-assistance-document-for-the-reporting-of-daily-air-quailty.pdf"
)
"""The US EPA's AQI Technical Assistance Document (EPA-454/B-24-002, 2024), whose PM2.5 cautionary
statements the health advice ([aqi_advice]) follows: linked wherever the advice is shown."""


def turbidity_level(ntu: float) -> Level:
    for upper, level in TURBIDITY_BANDS:
        if ntu < upper:
            return level
    return TURBIDITY_BANDS[-1][1]


def aqi_level(nowcast: float) -> tuple[Level, int]:
    """The category of a NowCast PM2.5 (µg/m³) as a Level, and its AQI number."""
    cat = aqi.category(nowcast)
    text = "#000" if cat.key in _DARK_TEXT else "#fff"
    return Level(cat.key, cat.colour, text), aqi.aqi(nowcast)


@dataclass(frozen=True, slots=True)
class LimitLine:
    metric: str
    value: float
    average: str
    standard: str  # the standard's key
    title: str


def limit_lines(standards: list[str], metric: str) -> list[LimitLine]:
    """The short-term (24 h and shorter) limits for `metric` of the chosen standards: annual means
    drawn over a 24-hour chart would mislead more than they inform."""
    out = []
    for key in standards:
        std = STANDARDS[key]
        for lim in std.limits:
            if lim.metric.value == metric and lim.average.endswith(("h", "m")):
                out.append(LimitLine(metric, lim.value, lim.average, key, std.title))
    return out
