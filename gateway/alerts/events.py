"""An alert event (raised, reminder, cleared, acknowledged): its JSON on the alert topic, its point in
measurement `alert`, and the sentence a person reads (docs/protocol.md, "Alert payload")."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from gateway.points import FieldValue, format_line
from gateway.schema import format_ts
from hardware.base import METRIC_UNITS, Metric

State = Literal["raised", "reminder", "cleared", "acknowledged"]
MEASUREMENT = "alert"
ALERT_SCHEMA = 1

_METRIC_NAMES = {
    "pm1_0": "PM1.0",
    "pm2_5": "PM2.5",
    "pm10": "PM10",
    "pm1_0_atm": "PM1.0 (atmospheric)",
    "pm2_5_atm": "PM2.5 (atmospheric)",
    "pm10_atm": "PM10 (atmospheric)",
    "pc0_3": "Particles ≥ 0.3 µm",
    "pc0_5": "Particles ≥ 0.5 µm",
    "pc1_0": "Particles ≥ 1.0 µm",
    "pc2_5": "Particles ≥ 2.5 µm",
    "pc5_0": "Particles ≥ 5.0 µm",
    "pc10": "Particles ≥ 10 µm",
    "turbidity": "Turbidity",
    "rh": "Relative humidity",
    "air_temp": "Air temperature",
    "water_temp": "Water temperature",
    "pressure": "Pressure",
}


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
    return _METRIC_NAMES.get(metric, metric)


def unit(metric: str) -> str:
    try:
        return METRIC_UNITS[Metric(metric)]
    except ValueError:
        return ""


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
