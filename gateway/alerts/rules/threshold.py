"""A metric above (or below) a limit, instantly or as a mean over a window (`average = "24h"`), with
optional hysteresis: the standards' 24-hour limits and any site's own action levels."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from contract.metrics import Metric
from gateway.alerts.events import AlertEvent
from gateway.alerts.machine import Evaluation
from gateway.alerts.plan import INSTANT, WINDOW
from gateway.alerts.reasons import reason
from gateway.alerts.rules.base import Averaged, RuleBase, SeriesOf, register_rule, value_at

if TYPE_CHECKING:
    from gateway.alerts.plan import Plan


@register_rule
class ThresholdRule(RuleBase, Averaged):
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

    @property
    def history_s(self) -> float:
        return self.average_s + 3600

    @property
    def windowed_metric(self) -> str:
        return str(self.metric)

    @property
    def higher_is_worse(self) -> bool:
        return self.direction != "below"

    def labels(self) -> tuple[str, str]:
        return self.metric.value, self.average

    def plan(self, site: str, node: str, plan: Plan) -> None:
        if not self.applies(site, node):
            return
        key, above = (self.name, site, node), self.direction == "above"
        if self.average_s > 0:  # a: the index of its window in plan.groups
            window_ms = int(self.average_s * 1000)
            window = plan.group(WINDOW, self.metric, window_ms, self.min_completeness)
            entry = (WINDOW, self, ThresholdRule.evaluate, self.metric, key, window, 0, self.limit, above)
        else:
            entry = (INSTANT, self, ThresholdRule.evaluate, self.metric, key, 0, 0, self.limit, above)
        plan.evaluated.append(entry)

    def evaluate(self, series_of: SeriesOf, site: str, node: str, t_ms: int) -> Evaluation:
        series = series_of(site, node, self.metric.value)
        if series is None:
            return Evaluation("unknown", reason=reason("no_metric", metric=self.metric.value))
        value, why = value_at(series, t_ms, self.average_s, self.min_completeness)
        if value is None:
            return Evaluation("unknown", limit=self.limit, reason=why)
        if self.direction == "above":
            exceeds = value > self.limit
            clear_ok = not exceeds if self.clear_below is None else value < self.clear_below
        else:
            exceeds = value < self.limit
            clear_ok = not exceeds if self.clear_below is None else value > self.clear_below
        return Evaluation("exceeds" if exceeds else "ok", value, self.limit, clear_ok)

    def message(self, e: AlertEvent) -> tuple[str, dict[str, Any]]:
        state = "cleared" if e.state == "cleared" else self.direction
        return f"alert.threshold.{state}", {"standard": self.standard}
