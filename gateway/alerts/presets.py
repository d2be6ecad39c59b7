"""Presets that expand into ordinary rules, from the limits in gateway/standards.py (sources there and
in docs/alerts.md). Only the averaging periods an alert can act on are used: 24-hour means (and the
NowCast for `us-epa`); annual means belong in the regulators' report, not in a notification."""

from __future__ import annotations

from contract.i18n import Texts
from gateway.alerts.rules import AnyRule, NowcastRule, ThresholdRule
from gateway.standards import STANDARDS

ALERTABLE_AVERAGES = ("24h",)
_EN = Texts("en")


def _named(key: str) -> str:
    """How a preset's rules name their standard (`standard`, stored with each event): the English
    of `[alert.standard]`; messages find the key again and write each reader's words for it."""
    return _EN(f"alert.standard.{key}")


def expand(preset: str, severity: str = "warning") -> list[AnyRule]:
    standard = STANDARDS[preset]
    rules: list[AnyRule] = []
    for limit in standard.limits:
        if limit.average not in ALERTABLE_AVERAGES:
            continue
        rules.append(
            ThresholdRule.model_validate(
                {
                    "name": f"{preset}-{limit.metric.value.replace('_', '')}-{limit.average}",
                    "type": "threshold",
                    "metric": limit.metric.value,
                    "limit": limit.value,
                    "average": limit.average,
                    "severity": severity,
                    "clear_after": "1h",
                    "remind_every": "12h",
                    "standard": _named(preset) if _EN.has(f"alert.standard.{preset}") else standard.title,
                }
            )
        )
    if preset == "us-epa":
        for category, sev in (("usg", "warning"), ("very-unhealthy", "critical")):
            rules.append(
                NowcastRule.model_validate(
                    {
                        "name": f"us-epa-nowcast-{category}",
                        "type": "nowcast",
                        "category": category,
                        "severity": sev,
                        "standard": _named("us-epa-aqi"),
                    }
                )
            )
    return rules
