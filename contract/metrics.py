"""The metric table: one row per metric, read by every part that names, bounds, formats or labels one.

Before this table a metric was described in five places (names and units in the drivers, ranges in
the wire models, labels in the alerts and again in the dashboard's words, units again there), and
the labels disagreed. Translations now carry only words: the label keys below name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Metric(StrEnum):
    """Metric names exactly as they travel on the wire (docs/protocol.md)."""

    PM1_0 = "pm1_0"
    PM2_5 = "pm2_5"
    PM10 = "pm10"
    PM1_0_ATM = "pm1_0_atm"
    PM2_5_ATM = "pm2_5_atm"
    PM10_ATM = "pm10_atm"
    PC0_3 = "pc0_3"
    PC0_5 = "pc0_5"
    PC1_0 = "pc1_0"
    PC2_5 = "pc2_5"
    PC5_0 = "pc5_0"
    PC10 = "pc10"
    TURBIDITY = "turbidity"
    RH = "rh"
    AIR_TEMP = "air_temp"
    WATER_TEMP = "water_temp"
    PRESSURE = "pressure"


@dataclass(frozen=True, slots=True)
class MetricSpec:
    """What is known of one metric, language aside.

    `unit` is the unit as the API, exports and alerts write it. A unit that holds words (the
    particle counts) also has `unit_key`, the translation a page shows instead of the English.
    `label_key` names the long label (pages), `short_key` the short one (alert sentences, report
    tables); both are keys in `contract/i18n/<language>.toml`."""

    metric: Metric
    unit: str
    low: float
    high: float
    decimals: int = 1
    unit_key: str | None = None

    @property
    def name(self) -> str:
        return self.metric.value

    @property
    def label_key(self) -> str:
        return f"metric.{self.metric.value}"

    @property
    def short_key(self) -> str:
        return f"metric_short.{self.metric.value}"

    def format(self, value: float) -> str:
        """The value as people read it: the metric's own number of decimals."""
        return f"{value:.{self.decimals}f}"


_UG = "µg/m³"
_COUNT = "particles/0.1 L"
_COUNT_KEY = "unit.particles_per_0_1_l"

METRICS: dict[Metric, MetricSpec] = {
    spec.metric: spec
    for spec in (
        MetricSpec(Metric.PM1_0, _UG, 0.0, 10_000.0),
        MetricSpec(Metric.PM2_5, _UG, 0.0, 10_000.0),
        MetricSpec(Metric.PM10, _UG, 0.0, 10_000.0),
        MetricSpec(Metric.PM1_0_ATM, _UG, 0.0, 10_000.0),
        MetricSpec(Metric.PM2_5_ATM, _UG, 0.0, 10_000.0),
        MetricSpec(Metric.PM10_ATM, _UG, 0.0, 10_000.0),
        # u16 counts per 0.1 L in the PMS frame
        MetricSpec(Metric.PC0_3, _COUNT, 0.0, 65_535.0, unit_key=_COUNT_KEY),
        MetricSpec(Metric.PC0_5, _COUNT, 0.0, 65_535.0, unit_key=_COUNT_KEY),
        MetricSpec(Metric.PC1_0, _COUNT, 0.0, 65_535.0, unit_key=_COUNT_KEY),
        MetricSpec(Metric.PC2_5, _COUNT, 0.0, 65_535.0, unit_key=_COUNT_KEY),
        MetricSpec(Metric.PC5_0, _COUNT, 0.0, 65_535.0, unit_key=_COUNT_KEY),
        MetricSpec(Metric.PC10, _COUNT, 0.0, 65_535.0, unit_key=_COUNT_KEY),
        MetricSpec(Metric.TURBIDITY, "NTU", 0.0, 10_000.0),
        MetricSpec(Metric.RH, "%", 0.0, 100.0),
        MetricSpec(Metric.AIR_TEMP, "°C", -60.0, 70.0),
        MetricSpec(Metric.WATER_TEMP, "°C", -5.0, 60.0),
        MetricSpec(Metric.PRESSURE, "hPa", 300.0, 1100.0),
    )
}
"""Every metric of the contract; a test checks that no Metric is missing."""

METRIC_UNITS: dict[Metric, str] = {m: spec.unit for m, spec in METRICS.items()}
PHYSICAL_RANGE: dict[Metric, tuple[float, float]] = {m: (spec.low, spec.high) for m, spec in METRICS.items()}
"""Calibrated values outside these bounds cannot be real measurements and are refused."""


def spec(metric: str) -> MetricSpec | None:
    """The row for a metric name, or None for a name outside the contract (`any`, `status`)."""
    try:
        return METRICS[Metric(metric)]
    except ValueError:
        return None


def unit(metric: str) -> str:
    """The unit as the API writes it; empty for a name outside the contract."""
    row = spec(metric)
    return row.unit if row else ""
