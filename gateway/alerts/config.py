"""`[alerts]` in gateway.toml: rules, presets and channels, validated before anything connects.

Durations are written as in the issue and the standards (`"15m"`, `"1h"`, `"24h"`, `"0"`) and kept as
text for messages and the `average` field, with the seconds computed once here.
"""

from __future__ import annotations

import functools
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.metrics import Metric
from contract.wire import ID_PATTERN
from gateway.aqi import CATEGORY_KEYS
from gateway.channels import ChannelConfig

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w|y)?$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
RULE_TYPES = ("threshold", "nowcast", "difference", "offline", "sensor_fault")


@functools.lru_cache(maxsize=256)  # rules ask for their windows' seconds on every reading
def duration_s(text: str) -> float:
    """Seconds in `"90s"`, `"15m"`, `"1h"`, `"24h"`, `"7d"`, `"1y"` or `"0"`; ValueError otherwise."""
    match = _DURATION_RE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration: write a positive number with s, m, h, d, w or y ('15m', '24h')"
        )
    number, unit = float(match.group(1)), match.group(2)
    if unit is None and number != 0:
        raise ValueError(f"{text!r} has no unit: write '{text}s', '{text}m' or '{text}h'")
    return number * _UNIT_S[unit or "s"]


def _duration(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(f"{value!r} is a number: write a duration as text, like '15m' or '24h'")
    if not isinstance(value, str):
        raise ValueError("a duration is text, like '15m' or '24h'")
    duration_s(value)  # raises with the reason ("-5m" fails the pattern: negative)
    return value.strip()


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
RuleName = Annotated[str, Field(pattern=ID_PATTERN)]


class _RuleBase(_Model):
    name: RuleName
    severity: Severity = "warning"
    sites: list[str] | None = None
    nodes: list[str] | None = None
    clear_after: str = "10m"
    remind_every: str = "6h"
    standard: str | None = Field(
        default=None, description="How messages name the limit's source: 'MNS 4585:2016'."
    )

    _check_durations = field_validator("clear_after", "remind_every", mode="before")(lambda v: _duration(v))

    @property
    def clear_after_s(self) -> float:
        return duration_s(self.clear_after)

    @property
    def remind_every_s(self) -> float:
        return duration_s(self.remind_every)

    def applies(self, site: str, node: str) -> bool:
        return (self.sites is None or site in self.sites) and (self.nodes is None or node in self.nodes)


class _Averaged(_Model):
    average: str = "instant"
    min_completeness: float = Field(default=0.75, gt=0, le=1)

    @field_validator("average", mode="before")
    @classmethod
    def _average(cls, value: Any) -> str:
        if value == "instant":
            return "instant"
        text = _duration(value)
        if duration_s(text) <= 0:
            raise ValueError("an average needs a positive duration, or 'instant'")
        return text

    @property
    def average_s(self) -> float:
        """0 for an instantaneous value."""
        return 0.0 if self.average == "instant" else duration_s(self.average)


class ThresholdRule(_RuleBase, _Averaged):
    type: Literal["threshold"]
    metric: Metric
    limit: float
    direction: Literal["above", "below"] = "above"
    clear_below: float | None = Field(default=None, description="Hysteresis; for 'below' rules, clear above.")

    @model_validator(mode="after")
    def _hysteresis(self) -> ThresholdRule:
        if self.clear_below is not None:
            wrong = (
                self.clear_below > self.limit if self.direction == "above" else self.clear_below < self.limit
            )
            if wrong:
                raise ValueError(f"clear_below {self.clear_below} is on the wrong side of limit {self.limit}")
        return self

    @property
    def clear_level(self) -> float:
        return self.limit if self.clear_below is None else self.clear_below


class NowcastRule(_RuleBase):
    type: Literal["nowcast"]
    metric: Literal["pm2_5"] = "pm2_5"
    category: str = Field(default="usg", description="Raise at this AQI category or worse.")
    min_completeness: float = Field(default=0.75, gt=0, le=1)
    clear_after: str = "1h"

    @field_validator("category")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CATEGORY_KEYS:
            raise ValueError(f"unknown AQI category {value!r}; use one of {', '.join(CATEGORY_KEYS)}")
        return value


class Tier(_Model):
    """One band of background levels: applies while the reference is at most `up_to` (None = above)."""

    up_to: float | None = None
    limit: float | None = Field(default=None, ge=0)
    limit_pct: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _some_limit(self) -> Tier:
        if self.limit is None and self.limit_pct is None:
            raise ValueError("a tier needs limit, limit_pct or both")
        return self


# IDAPA 58.01.02.252.01.b (docs/alerts.md): +5 NTU over background at or below 50 NTU, +10 % above 50 NTU,
# never more than +25 NTU (which is where 10 % lands at 250 NTU).
IDAHO_TIERS = (Tier(up_to=50.0, limit=5.0), Tier(up_to=250.0, limit_pct=10.0), Tier(limit=25.0))
DIFFERENCE_STANDARDS = {"idapa-58.01.02.252.01.b": IDAHO_TIERS}


class DifferenceRule(_RuleBase, _Averaged):
    type: Literal["difference"]
    metric: Metric
    node: str = Field(pattern=ID_PATTERN)
    reference: str = Field(pattern=ID_PATTERN)
    limit: float | None = Field(default=None, ge=0, description="Absolute increase over the reference.")
    limit_pct: float | None = Field(default=None, ge=0, description="Relative increase, % of the reference.")
    tiers: list[Tier] | None = None
    preset: Literal["idapa-58.01.02.252.01.b"] | None = None
    average: str = "15m"

    @model_validator(mode="after")
    def _one_way_to_limit(self) -> DifferenceRule:
        if self.node == self.reference:
            raise ValueError("node and reference are the same node")
        if self.limit is None and self.limit_pct is None and not self.tiers and self.preset is None:
            raise ValueError("a difference rule needs limit, limit_pct, tiers or preset")
        return self

    @property
    def tier_list(self) -> tuple[Tier, ...]:
        if self.preset is not None:
            return DIFFERENCE_STANDARDS[self.preset]
        if self.tiers:
            return tuple(self.tiers)
        return (Tier(limit=self.limit, limit_pct=self.limit_pct),)

    def applies(self, site: str, node: str) -> bool:
        return node == self.node and (self.sites is None or site in self.sites)


class OfflineRule(_RuleBase):
    type: Literal["offline"]
    after: str = "30m"
    clear_after: str = "0"

    _check_after = field_validator("after", mode="before")(lambda v: _duration(v))

    @property
    def after_s(self) -> float:
        return duration_s(self.after)


class SensorFaultRule(_RuleBase):
    type: Literal["sensor_fault"]
    metric: Metric | None = Field(default=None, description="None: any metric, or the sensor_fault flag.")
    after: str = "30m"
    clear_after: str = "0"

    _check_after = field_validator("after", mode="before")(lambda v: _duration(v))

    @property
    def after_s(self) -> float:
        return duration_s(self.after)


Rule = Annotated[
    ThresholdRule | NowcastRule | DifferenceRule | OfflineRule | SensorFaultRule, Field(discriminator="type")
]
AnyRule = ThresholdRule | NowcastRule | DifferenceRule | OfflineRule | SensorFaultRule


class AlertsConfig(_Model):
    presets: list[Literal["who-2021", "us-epa", "mns-4585-2016"]] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    channels: list[ChannelConfig] = Field(default_factory=list)
    late_after: str = Field(default="15m", description="A reading older than this when it arrives is late.")
    preset_severity: Severity = "warning"

    _check_late = field_validator("late_after", mode="before")(lambda v: _duration(v))

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
        from gateway.alerts.presets import expand

        out: list[AnyRule] = []
        for preset in self.presets:
            out.extend(expand(preset, self.preset_severity))
        out.extend(self.rules)
        return out

    @property
    def late_after_s(self) -> float:
        return duration_s(self.late_after)


RULE_UNION_TAGS: tuple[str, ...] = RULE_TYPES
