"""An alert event (raised, reminder, cleared, acknowledged): its JSON on the alert topic, its point in
measurement `alert`, and the sentence a person reads (docs/protocol.md, "Alert payload")."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from contract.i18n import Texts
from contract.metrics import unit as metric_unit
from contract.wire import format_ts
from gateway.points import FieldValue, format_line

State = Literal["raised", "reminder", "cleared", "acknowledged"]
MEASUREMENT = "alert"
ALERT_SCHEMA = 1

_EN = Texts("en")


@dataclass(frozen=True, slots=True)
class AlertEvent:
    id: str  # `<site>.<node>.<rule>.<start as YYYYmmddTHHMMSSZ>`: what `ack` takes
    state: State
    site: str
    node: str
    rule: str
    rule_type: str
    metric: str  # a metric name, or "status" (offline) / "any" (a fault on any metric)
    severity: str
    at: datetime  # when this event happened: reading time, or the clock for offline and ack
    started: datetime
    ended: datetime | None
    value: float | None
    limit: float | None
    average: str  # "instant", "24h", "nowcast", ...
    peak: float | None
    late: bool
    message: str
    acked_by: str | None = None
    category: str | None = None  # AQI category key for nowcast rules

    def with_state(self, state: State, **changes: Any) -> AlertEvent:
        return replace(self, state=state, **changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": ALERT_SCHEMA,
            "id": self.id,
            "state": self.state,
            "site": self.site,
            "node": self.node,
            "rule": self.rule,
            "type": self.rule_type,
            "metric": self.metric,
            "severity": self.severity,
            "ts": format_ts(self.at),
            "started": format_ts(self.started),
            "ended": format_ts(self.ended) if self.ended else None,
            "value": self.value,
            "limit": self.limit,
            "average": self.average,
            "peak": self.peak,
            "late": self.late,
            "acked_by": self.acked_by,
            "category": self.category,
            "message": self.message,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> AlertEvent:
        def ts(text: str | None) -> datetime | None:
            return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None

        return cls(
            id=doc["id"],
            state=doc["state"],
            site=doc["site"],
            node=doc["node"],
            rule=doc["rule"],
            rule_type=doc["type"],
            metric=doc["metric"],
            severity=doc["severity"],
            at=ts(doc["ts"]) or datetime.now(UTC),
            started=ts(doc["started"]) or datetime.now(UTC),
            ended=ts(doc.get("ended")),
            value=doc.get("value"),
            limit=doc.get("limit"),
            average=doc["average"],
            peak=doc.get("peak"),
            late=bool(doc.get("late")),
            message=doc["message"],
            acked_by=doc.get("acked_by"),
            category=doc.get("category"),
        )

    def to_line(self) -> str:
        fields: dict[str, FieldValue] = {
            "state": self.state,
            "id": self.id,
            "average": self.average,
            "severity": self.severity,
            "late": self.late,
            "message": self.message,
            "started": format_ts(self.started),
            "ended": format_ts(self.ended) if self.ended is not None else None,
            "acked_by": self.acked_by or None,
        }
        for name, number in (("value", self.value), ("limit", self.limit), ("peak", self.peak)):
            fields[name] = None if number is None else float(number)
        tags = {"site": self.site, "node": self.node, "rule": self.rule, "metric": self.metric}
        return format_line(MEASUREMENT, tags, fields, self.at)


def alert_id(site: str, node: str, rule: str, started: datetime) -> str:
    return f"{site}.{node}.{rule}.{started.astimezone(UTC):%Y%m%dT%H%M%SZ}"


def metric_label(metric: str) -> str:
    return _EN.short(metric)


def unit(metric: str) -> str:
    return metric_unit(metric)


def fmt(value: float | None, metric: str) -> str:
    if value is None:
        return "no value"
    u = unit(metric)
    return f"{value:.1f} {u}".strip()


def average_label(average: str) -> str:
    if average == "instant":
        return ""
    if average == "nowcast":
        return " NowCast"
    number = average.rstrip("smhdwy")
    names = {"s": "second", "m": "minute", "h": "hour", "d": "day", "w": "week", "y": "year"}
    return f" {number}-{names.get(average[-1], average[-1])} mean"
