"""`[alerts]` in gateway.toml: rules, presets and channels, validated before anything connects.

Durations are written as in the issue and the standards (`"15m"`, `"1h"`, `"24h"`, `"0"`) and kept as
text for messages and the `average` field, with the seconds computed once here. Each rule table is
validated by its kind's model (gateway/alerts/rules/), each channel table by its channel's
(gateway/channels/), both chosen by `type`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from gateway.alerts.presets import expand
from gateway.alerts.rules import (
    IDAHO_TIERS,
    RULE_TYPES,
    AnyRule,
    DifferenceRule,
    NowcastRule,
    OfflineRule,
    Rule,
    SensorFaultRule,
    ThresholdRule,
    Tier,
)
from gateway.alerts.rules.base import SEVERITIES, Model, Severity, duration, duration_s
from gateway.channels import ChannelConfig


class AlertsConfig(Model):
    presets: list[Literal["who-2021", "us-epa", "mns-4585-2016"]] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    channels: list[ChannelConfig] = Field(default_factory=list)
    late_after: str = Field(default="15m", description="A reading older than this when it arrives is late.")
    preset_severity: Severity = "warning"
    ack_link_valid: str = Field(
        default="3d",
        description="How long an acknowledgement link works (it also ends with its alert).",
    )

    _check_late = field_validator("late_after", mode="before")(lambda v: duration(v))
    _check_link = field_validator("ack_link_valid", mode="before")(lambda v: duration(v))

    @model_validator(mode="after")
    def _unique_names(self) -> AlertsConfig:
        seen: set[str] = set()
        for rule in self.all_rules():
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}; rule names must be unique")
            seen.add(rule.name)
        names = [c.name for c in self.channels if c.name]
        if len(names) != len(set(names)):
            raise ValueError("two channels have the same name")
        return self

    def all_rules(self) -> list[AnyRule]:
        out: list[AnyRule] = []
        for preset in self.presets:
            out.extend(expand(preset, self.preset_severity))
        out.extend(self.rules)
        return out

    @property
    def late_after_s(self) -> float:
        return duration_s(self.late_after)

    @property
    def ack_link_valid_s(self) -> float:
        return duration_s(self.ack_link_valid)


__all__ = [
    "IDAHO_TIERS",
    "RULE_TYPES",
    "SEVERITIES",
    "AlertsConfig",
    "AnyRule",
    "DifferenceRule",
    "NowcastRule",
    "OfflineRule",
    "Rule",
    "SensorFaultRule",
    "Severity",
    "ThresholdRule",
    "Tier",
    "duration_s",
]
