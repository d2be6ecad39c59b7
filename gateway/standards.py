"""Air-quality limits of the standards minewatch knows, as data, with their sources.

Used by the alert presets and by the regulators' report, so a limit is written down exactly once.
Each limit is a mean over `average` (the averaging period the standard defines) that must not be
exceeded. Check a number against its source before changing it, and cite the source in
docs/standards.md.
"""

from __future__ import annotations

from dataclasses import dataclass

from contract.metrics import Metric


@dataclass(frozen=True, slots=True)
class Limit:
    metric: Metric
    average: str  # "24h", "1y", ...: the averaging period, in the rules' duration syntax
    value: float  # in the metric's unit (µg/m³ for PM)


@dataclass(frozen=True, slots=True)
class Standard:
    key: str  # the preset name in gateway.toml
    title: str  # how a message names it: "the WHO 2021 guideline"
    source: str
    limits: tuple[Limit, ...]


STANDARDS: dict[str, Standard] = {
    s.key: s
    for s in (
        Standard(
            key="who-2021",
            title="WHO 2021 air quality guideline",
            source="WHO global air quality guidelines (2021), Table 0.1 (ISBN 978-92-4-003422-8)",
            limits=(
                Limit(Metric.PM2_5, "24h", 15.0),
                Limit(Metric.PM10, "24h", 45.0),
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
                Limit(Metric.PM2_5, "24h", 35.0),
                Limit(Metric.PM10, "24h", 150.0),
                Limit(Metric.PM2_5, "1y", 9.0),
            ),
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
