"""A sensor that sent no value (or set the `sensor_fault` flag) for `after`: judged from the readings
themselves, so no window is kept; how long the fault has lasted is kept in the machine."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, field_validator

from contract.flags import Flag
from contract.metrics import Metric
from contract.wire import ReadingPayload
from gateway.alerts.events import AlertEvent
from gateway.alerts.machine import Evaluation, MachineState
from gateway.alerts.plan import READING
from gateway.alerts.rules.base import RuleBase, duration, duration_s, register_rule

if TYPE_CHECKING:
    from gateway.alerts.plan import Plan


@register_rule
class SensorFaultRule(RuleBase):
    type: Literal["sensor_fault"]
    metric: Metric | None = Field(default=None, description="None: any metric, or the sensor_fault flag.")
    after: str = "30m"
    clear_after: str = "0"

    _check_after = field_validator("after", mode="before")(lambda v: duration(v))

    @property
    def after_s(self) -> float:
        return duration_s(self.after)

    def labels(self) -> tuple[str, str]:
        return (self.metric.value if self.metric else "any"), "instant"

    def plan(self, site: str, node: str, plan: Plan) -> None:
        if self.applies(site, node):
            plan.evaluated.append((READING, self, None, "", (self.name, site, node), 0, 0, 0.0, True))

    def observe(self, reading: ReadingPayload) -> bool | None:
        if self.metric is not None:
            if self.metric not in reading.metrics:
                return None
            return reading.metrics[self.metric].value is None
        return Flag.SENSOR_FAULT in reading.flags or any(mv.value is None for mv in reading.metrics.values())

    def lasting(self, m: MachineState, holds: bool, t_ms: int) -> Evaluation:
        if holds and m.since_ms is None:
            m.since_ms = t_ms
        elif not holds:
            m.since_ms = None
        lasted_s = (t_ms - m.since_ms) / 1000 if m.since_ms is not None else 0.0
        exceeds = holds and lasted_s >= self.after_s
        return Evaluation("exceeds" if exceeds else "ok", lasted_s / 60, self.after_s / 60, not holds)

    def value_unit(self, metric: str) -> str:
        return "min"  # the value is how long it has lasted, the limit `after`

    def message(self, e: AlertEvent) -> tuple[str, dict[str, Any]]:
        return f"alert.sensor_fault.{'cleared' if e.state == 'cleared' else 'raised'}", {}
