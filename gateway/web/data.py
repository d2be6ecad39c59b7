"""What the dashboard reads from InfluxDB: latest readings, bucketed series, flags, alerts, CSV rows.

Every query has explicit time bounds taken from the caller's clock (never `now()` in InfluxQL), so a
test can serve a simulated day and the pages show what a visitor at that moment would see.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from contract.i18n import Texts
from contract.metrics import Metric
from gateway.alerts import messages
from gateway.web.influxql import ident, where

METRICS: tuple[str, ...] = tuple(m.value for m in Metric)
ALERT_FIELDS = ("state", "value", "limit", "average", "severity", "late", "message", "msg_id", "msg_params")
EPOCH_START = datetime(2000, 1, 1, tzinfo=UTC)
_TICK = timedelta(milliseconds=1)  # "at or before now" with a half-open range


class Querier(Protocol):
    def query(self, influxql: str) -> list[dict[str, Any]]: ...


def _time(row: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(int(row["time"]) / 1000, tz=UTC)


@dataclass(frozen=True, slots=True)
class Latest:
    site: str
    node: str
    time: datetime
    seq: int | None
    values: dict[str, float]  # metric -> calibrated value; a null (failed) metric is absent
    flags: list[str]


@dataclass(frozen=True, slots=True)
class Series:
    every_s: int
    times: list[datetime]
    values: dict[str, list[float | None]]  # metric -> mean per bucket, None for an empty bucket


@dataclass(frozen=True, slots=True)
class AlertEvent:
    time: datetime
    site: str
    node: str
    rule: str
    metric: str
    state: str
    severity: str | None
    value: float | None
    limit: float | None
    average: str | None
    late: bool
    message: str | None
    tags: dict[str, str] = field(default_factory=dict)  # any further tags the alert engine adds
    msg_id: str | None = None
    msg_params: str | None = None  # JSON, as the `alert` measurement keeps it

    def sentence(self, texts: Texts) -> str:
        """The message in the page's language; events stored before message ids show their English."""
        doc = {"message": self.message, "msg_id": self.msg_id, "msg_params": self.msg_params}
        return messages.text_of(doc, texts)


class Reader:
    def __init__(self, db: Querier) -> None:
        self._db = db

    def metric_fields(self) -> list[str]:
        """Metrics stored at all (in the contract's order), so queries name only existing fields."""
        rows = self._db.query(f"SHOW FIELD KEYS FROM {ident('reading')}")
        keys = {str(r.get("fieldKey")) for r in rows}
        return [m for m in METRICS if m in keys]

    def latest(self, now: datetime, *, site: str | None = None, node: str | None = None) -> list[Latest]:
        """The last reading of every node (at or before `now`), sorted by site and node."""
        bounds = where(site=site, node=node, start=EPOCH_START, end=now + _TICK)
        q = (
            f"SELECT * FROM {ident('reading')} {bounds}"
            f" GROUP BY {ident('site')}, {ident('node')} ORDER BY time DESC LIMIT 1"
        )
        out = []
        for row in self._db.query(q):
            values = {m: float(row[m]) for m in METRICS if isinstance(row.get(m), int | float)}
            flags = [f for f in str(row.get("flags") or "").split(",") if f]
            seq = row.get("seq")
            out.append(
                Latest(
                    str(row["site"]),
                    str(row["node"]),
                    _time(row),
                    int(seq) if seq is not None else None,
                    values,
                    flags,
                )
            )
        return sorted(out, key=lambda r: (r.site, r.node))

    def series(
        self, site: str, node: str, metrics: list[str], start: datetime, end: datetime, every_s: int
    ) -> Series:
        """Means per `every_s` bucket; empty buckets are None so charts show gaps, not lines."""
        if not metrics:
            return Series(every_s, [], {})
        cols = ", ".join(f"mean({ident(m)}) AS {ident(m)}" for m in metrics)
        q = (
            f"SELECT {cols} FROM {ident('reading')} {where(site=site, node=node, start=start, end=end)}"
            f" GROUP BY time({every_s}s)"
        )
        rows = self._db.query(q)
        times = [_time(r) for r in rows]
        values = {m: [None if r.get(m) is None else float(r[m]) for r in rows] for m in metrics}
        return Series(every_s, times, values)

    def hourly_means(
        self, metric: str, end_hour: datetime, hours: int = 12
    ) -> dict[tuple[str, str], list[float | None]]:
        """(site, node) -> hourly means, most recent first (index 0 = the hour ending at `end_hour`)."""
        start = end_hour - timedelta(hours=hours)
        q = (
            f"SELECT mean({ident(metric)}) AS {ident('v')} FROM {ident('reading')}"
            f" {where(start=start, end=end_hour)} GROUP BY time(1h), {ident('site')}, {ident('node')}"
        )
        out: dict[tuple[str, str], list[float | None]] = {}
        for row in self._db.query(q):
            key = (str(row["site"]), str(row["node"]))
            hour = out.setdefault(key, [None] * hours)
            index = hours - 1 - int((_time(row) - start) / timedelta(hours=1))
            if 0 <= index < hours and row.get("v") is not None:
                hour[index] = float(row["v"])
        return out

    def flagged(
        self, site: str, node: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, list[str]]]:
        """Readings that carry quality flags, oldest first (at most 5000)."""
        q = (
            f"SELECT {ident('flags')} FROM {ident('reading')} "
            f"{where(site=site, node=node, start=start, end=end)} AND {ident('flags')} != '' LIMIT 5000"
        )
        return [(_time(r), str(r["flags"]).split(",")) for r in self._db.query(q) if r.get("flags")]

    def alerts(
        self,
        start: datetime,
        end: datetime,
        *,
        site: str | None = None,
        node: str | None = None,
        limit: int = 200,
    ) -> list[AlertEvent]:
        """Alert events (issue 6's `alert` measurement), newest first."""
        q = (
            f"SELECT * FROM {ident('alert')} {where(site=site, node=node, start=start, end=end)}"
            f" ORDER BY time DESC LIMIT {int(limit)}"
        )
        return [_alert(r) for r in self._db.query(q)]

    def active_alerts(
        self, now: datetime, *, site: str | None = None, node: str | None = None
    ) -> list[AlertEvent]:
        """The last event of each alert series whose state is not `cleared`, newest first."""
        bounds = where(site=site, node=node, start=EPOCH_START, end=now + _TICK)
        q = f"SELECT * FROM {ident('alert')} {bounds} GROUP BY * ORDER BY time DESC LIMIT 1"
        last = [_alert(r) for r in self._db.query(q)]
        return sorted((a for a in last if a.state != "cleared"), key=lambda a: a.time, reverse=True)

    def csv_rows(
        self, start: datetime, end: datetime, *, site: str | None = None, node: str | None = None
    ) -> Iterator[dict[str, Any]]:
        """Raw stored readings, oldest first, one day per query so memory stays flat."""
        day = start
        while day < end:
            stop = min(day + timedelta(days=1), end)
            q = (
                f"SELECT * FROM {ident('reading')} {where(site=site, node=node, start=day, end=stop)}"
                f" GROUP BY {ident('site')}, {ident('node')}"
            )
            yield from sorted(self._db.query(q), key=lambda r: (int(r["time"]), r["site"], r["node"]))
            day = stop


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _alert(row: dict[str, Any]) -> AlertEvent:
    known = {"time", "_measurement", "site", "node", "rule", "metric", *ALERT_FIELDS}
    extra = {k: str(v) for k, v in row.items() if k not in known and isinstance(v, str)}
    late = row.get("late")
    return AlertEvent(
        time=_time(row),
        site=str(row.get("site") or ""),
        node=str(row.get("node") or ""),
        rule=str(row.get("rule") or ""),
        metric=str(row.get("metric") or ""),
        state=str(row.get("state") or ""),
        severity=str(row["severity"]) if row.get("severity") is not None else None,
        value=_float(row.get("value")),
        limit=_float(row.get("limit")),
        average=str(row["average"]) if row.get("average") is not None else None,
        late=late is True or str(late).lower() == "true",
        message=str(row["message"]) if row.get("message") is not None else None,
        tags=extra,
        msg_id=str(row["msg_id"]) if row.get("msg_id") is not None else None,
        msg_params=str(row["msg_params"]) if row.get("msg_params") is not None else None,
    )
