"""A node that sent nothing for `after`, or whose last will said it went offline: judged on the clock,
since silence brings no reading to judge it by.

A node stopped cleanly says so (`{"state": "stopped"}`): that is told once, as a planned stop, at
severity info and without reminders; the node's return is its all-clear. Until the node says it is
`online` again, readings that arrive after its status (the last partial one) do not clear it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import field_validator

from gateway.alerts.events import AlertEvent
from gateway.alerts.machine import Evaluation
from gateway.alerts.rules.base import RuleBase, duration, duration_s, register_rule

if TYPE_CHECKING:
    from gateway.alerts.plan import Plan


STOPPED = "stopped"


@register_rule
class OfflineRule(RuleBase):
    type: Literal["offline"]
    after: str = "30m"
    clear_after: str = "0"

    steps_on_clock: ClassVar[bool] = True

    _check_after = field_validator("after", mode="before")(lambda v: duration(v))

    @property
    def after_s(self) -> float:
        return duration_s(self.after)

    def plan(self, site: str, node: str, plan: Plan) -> None:
        if self.applies(site, node):
            plan.on_arrival.append(self)  # any reading says the node is back

    def on_clock(self, quiet_s: float, said: str | None) -> Evaluation:
        if said == "stopped":
            return Evaluation("exceeds", quiet_s / 60, self.after_s / 60, False, reason=STOPPED)
        if said is not None:
            return Evaluation("exceeds", quiet_s / 60, self.after_s / 60, False, reason="status")
        if quiet_s > self.after_s:
            return Evaluation("exceeds", quiet_s / 60, self.after_s / 60, False, reason="silent")
        return Evaluation("ok", quiet_s / 60, self.after_s / 60)

    def is_notice(self, detail: str) -> bool:
        return detail == STOPPED

    def value_unit(self, metric: str) -> str:
        return "min"  # the value is how long it has lasted, the limit `after`

    def message(self, e: AlertEvent) -> tuple[str, dict[str, Any]]:
        if e.msg_params.get("reason") == STOPPED:
            return ("alert.stop.back" if e.state == "cleared" else "alert.stop.stopped"), {}
        if e.state == "cleared":
            return "alert.offline.cleared", {}
        if e.state == "raised" and e.value is not None:
            return "alert.offline.raised", {}  # how long it has been quiet, in `value`
        return "alert.offline.since", {}
