"""PM2.5 at or above an AQI category by the US EPA NowCast over the last 12 hourly means."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, field_validator

from gateway import aqi
from gateway.alerts.events import AlertEvent
from gateway.alerts.machine import Evaluation
from gateway.alerts.plan import NOWCAST
from gateway.alerts.reasons import reason
from gateway.alerts.rules.base import RuleBase, SeriesOf, register_rule

if TYPE_CHECKING:
    from gateway.alerts.plan import Plan

_CATEGORY = {c.key: c for c in aqi.CATEGORIES}
RANK = {key: i for i, key in enumerate(aqi.CATEGORY_KEYS)}
"""AQI categories from the best (0, "good") up: a rule raises at its category's rank or above."""
NO_NOWCAST = reason("no_nowcast")  # fewer than two of the last three hours complete


# The same 12 hourly means give the same NowCast all hour long, for every NowCast rule.
@functools.lru_cache(maxsize=1024)
def nowcast_category(hourly: tuple[float | None, ...]) -> tuple[float | None, str, int]:
    """(NowCast, its category's key, that category's rank); (None, "", -1) without a NowCast."""
    value = aqi.nowcast(hourly)
    if value is None:
        return None, "", -1
    key = aqi.category(value).key
    return value, key, RANK[key]


@register_rule
class NowcastRule(RuleBase):
    type: Literal["nowcast"]
    metric: Literal["pm2_5"] = "pm2_5"
    category: str = Field(default="usg", description="Raise at this AQI category or worse.")
    min_completeness: float = Field(default=0.75, gt=0, le=1)
    clear_after: str = "1h"

    has_category: ClassVar[bool] = True
    naming_keys: ClassVar[dict[str, str]] = {"threshold": "category"}

    @field_validator("category")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in aqi.CATEGORY_KEYS:
            raise ValueError(f"unknown AQI category {value!r}; use one of {', '.join(aqi.CATEGORY_KEYS)}")
        return value

    @property
    def history_s(self) -> float:
        return 13 * 3600.0

    @property
    def windowed_metric(self) -> str:
        return str(self.metric)

    def labels(self) -> tuple[str, str]:
        return self.metric, "nowcast"

    def plan(self, site: str, node: str, plan: Plan) -> None:
        if not self.applies(site, node):
            return
        # a: the index of its hourly means in plan.groups, b: the rank that raises
        hours = plan.group(NOWCAST, self.metric, self.min_completeness, 0)
        rank = RANK[self.category]
        low = aqi.CATEGORIES[rank].low  # the limit reported: the category's lowest concentration
        key = (self.name, site, node)
        plan.evaluated.append((NOWCAST, self, NowcastRule.evaluate, self.metric, key, hours, rank, low, True))

    def evaluate(self, series_of: SeriesOf, site: str, node: str, t_ms: int) -> Evaluation:
        series = series_of(site, node, self.metric)
        threshold_cat = _CATEGORY[self.category]
        if series is None:
            return Evaluation("unknown", reason=reason("no_metric", metric=self.metric))
        value, key, rank = nowcast_category(series.hourly_means(t_ms, self.min_completeness))
        if value is None:
            return Evaluation("unknown", limit=threshold_cat.low, reason=NO_NOWCAST)
        exceeds = rank >= RANK[self.category]
        return Evaluation("exceeds" if exceeds else "ok", value, threshold_cat.low, not exceeds, category=key)

    def message(self, e: AlertEvent) -> tuple[str, dict[str, Any]]:
        state = "cleared" if e.state == "cleared" else "raised"
        index = aqi.aqi(e.value) if e.value is not None else None
        return f"alert.nowcast.{state}", {"category": e.category, "threshold": self.category, "aqi": index}
