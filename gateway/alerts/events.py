"""An alert event (raised, reminder, cleared, acknowledged): its JSON on the alert topic and its point in
measurement `alert` (docs/protocol.md, "Alert payload"). It carries its message as an id and
parameters, which each reader renders in its own language (gateway/alerts/messages.py), and the
English rendering, which stays the record's `message`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from contract.wire import format_ts
from gateway.points import FieldValue, format_line

State = Literal["raised", "reminder", "cleared", "acknowledged"]
MEASUREMENT = "alert"
ALERT_SCHEMA = 1


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
    msg_id: str = ""  # the message's key in contract/i18n/<language>.toml (gateway/alerts/messages.py)
    msg_params: dict[str, Any] = field(default_factory=dict)  # its parameters: values, not words
    unit: str = ""  # of `value`, `limit` and `peak`: the metric's, or "min" for offline and faults
    standard: str | None = None  # the source of `limit`, as the rule names it ("MNS 4585:2016")

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
            "msg_id": self.msg_id or None,
            "msg_params": self.msg_params or None,
            "unit": self.unit or None,
            "standard": self.standard,
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
            msg_id=doc.get("msg_id") or "",
            msg_params=doc.get("msg_params") or {},
            unit=doc.get("unit") or "",
            standard=doc.get("standard"),
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
            "msg_id": self.msg_id or None,
            "msg_params": params_json(self.msg_params) if self.msg_params else None,
            "unit": self.unit or None,
        }
        for name, number in (("value", self.value), ("limit", self.limit), ("peak", self.peak)):
            fields[name] = None if number is None else float(number)
        tags = {"site": self.site, "node": self.node, "rule": self.rule, "metric": self.metric}
        return format_line(MEASUREMENT, tags, fields, self.at)


def params_json(params: dict[str, Any]) -> str:
    """Message parameters as the `msg_params` field keeps them: compact JSON, keys sorted."""
    return json.dumps(params, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def alert_id(site: str, node: str, rule: str, started: datetime) -> str:
    return f"{site}.{node}.{rule}.{started.astimezone(UTC):%Y%m%dT%H%M%SZ}"
