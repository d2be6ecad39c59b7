"""A downstream node over its upstream reference by more than the allowed increase: absolute, relative,
or tiered by the background level as in IDAPA 58.01.02.252.01.b (docs/alerts.md)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from contract.metrics import Metric
from contract.wire import ID_PATTERN
from gateway.alerts.events import AlertEvent
from gateway.alerts.machine import Evaluation
from gateway.alerts.plan import OTHER
from gateway.alerts.reasons import percent, reason
from gateway.alerts.rules.base import Averaged, Model, RuleBase, SeriesOf, register_rule

if TYPE_CHECKING:
    from gateway.alerts.plan import Plan

INSTANT_MAX_AGE_MS = 15 * 60_000  # how old a reference's latest value may be for an instant difference


class Tier(Model):
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


def allowed_increase(tiers: tuple[Tier, ...], background: float) -> float:
    """The largest increase over `background` the tiers allow (the stricter of limit and limit_pct)."""
    for tier in tiers:
        if tier.up_to is None or background <= tier.up_to:
            limits = []
            if tier.limit is not None:
                limits.append(tier.limit)
            if tier.limit_pct is not None:
                limits.append(max(background, 0.0) * tier.limit_pct / 100.0)
            return min(limits)
    return min(t.limit for t in tiers if t.limit is not None) if any(t.limit for t in tiers) else 0.0


@register_rule
class DifferenceRule(RuleBase, Averaged):
    type: Literal["difference"]
    metric: Metric
    node: str = Field(pattern=ID_PATTERN)
    reference: str = Field(pattern=ID_PATTERN)
    reference_site: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="The reference's site when it is not the node's: only on a hub, which has both "
        "(docs/region.md); `sites` then names the downstream node's site.",
    )
    limit: float | None = Field(default=None, ge=0, description="Absolute increase over the reference.")
    limit_pct: float | None = Field(default=None, ge=0, description="Relative increase, % of the reference.")
    tiers: list[Tier] | None = None
    preset: Literal["idapa-58.01.02.252.01.b"] | None = None
    average: str = "15m"

    @model_validator(mode="after")
    def _one_way_to_limit(self) -> DifferenceRule:
        if self.reference_site is not None and not self.sites:
            raise ValueError("a reference at another site needs `sites`: the downstream node's site")
        if self.node == self.reference and (
            self.reference_site is None or self.reference_site in (self.sites or [])
        ):
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

    @property
    def history_s(self) -> float:
        return self.average_s + 3600

    @property
    def windowed_metric(self) -> str:
        return str(self.metric)

    def labels(self) -> tuple[str, str]:
        return self.metric.value, self.average

    def plan(self, site: str, node: str, plan: Plan) -> None:
        # A reading from either node steps the one machine, the downstream node's; with the
        # reference at another site, a reference reading steps the machine of each downstream site.
        machines: list[str] = []
        if node == self.node and (self.sites is None or site in self.sites):
            machines.append(site)
        if node == self.reference:
            if self.reference_site is None:
                if self.sites is None or site in self.sites:
                    machines.append(site)
            elif site == self.reference_site:
                machines += self.sites or []
        for at in dict.fromkeys(machines):
            key = (self.name, at, self.node)
            plan.evaluated.append(
                (OTHER, self, DifferenceRule.evaluate, self.metric.value, key, 0, 0, 0.0, True)
            )

    def evaluate(self, series_of: SeriesOf, site: str, node: str, t_ms: int) -> Evaluation:
        metric = self.metric.value
        up_site = self.reference_site or site
        down, up = series_of(site, self.node, metric), series_of(up_site, self.reference, metric)
        if down is None or up is None:
            missing = self.reference if up is None else self.node
            return Evaluation("unknown", reason=reason("no_metric_from", metric=metric, node=missing))
        if self.average_s <= 0:
            value = down.latest_before(t_ms, INSTANT_MAX_AGE_MS)
            background = up.latest_before(t_ms, INSTANT_MAX_AGE_MS)
            why = reason("no_recent")
        else:
            d = down.mean(t_ms, int(self.average_s * 1000), self.min_completeness)
            u = up.mean(t_ms, int(self.average_s * 1000), self.min_completeness)
            value, background = d.value, u.value
            why = reason(
                "windows_incomplete",
                down=percent(d.completeness),
                up=percent(u.completeness),
                needed=percent(self.min_completeness),
            )
        if value is None or background is None:
            return Evaluation("unknown", reason=why)
        increase = value - background
        allowed = allowed_increase(self.tier_list, background)
        exceeds = increase > allowed
        return Evaluation(
            "exceeds" if exceeds else "ok",
            increase,
            allowed,
            not exceeds,
            reason=f"background {background:.1f}",
        )

    def message(self, e: AlertEvent) -> tuple[str, dict[str, Any]]:
        state = "cleared" if e.state == "cleared" else "raised"
        where = self.reference if self.reference_site is None else f"{self.reference_site}/{self.reference}"
        return f"alert.difference.{state}", {"reference": where}
