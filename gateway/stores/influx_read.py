"""The reader protocol over InfluxQL, for InfluxDB 1.x and, through its v1-compatible `/query`, 2.x.

One class, one HTTP client (InfluxV1's `query` and `stream`). The dashboard's and the restart's
queries are here; the report's aggregates, whose text it prints, are in influx_report.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from contract.metrics import Metric
from gateway.stores.influx_report import ReportQueries
from gateway.stores.influxql import BUCKET_OFFSET, bucket_start, every, ident, where
from gateway.stores.reader import AlertEvent, Latest, Row, Series, Span, Trace

METRICS: tuple[str, ...] = tuple(m.value for m in Metric)
ALERT_FIELDS = ("state", "value", "limit", "average", "severity", "late", "message", "msg_id", "msg_params")
EPOCH_START = datetime(2000, 1, 1, tzinfo=UTC)


def _time(row: Row) -> datetime:
    return datetime.fromtimestamp(int(row["time"]) / 1000, tz=UTC)


def _nodes(node: str | None) -> list[str]:
    return [] if node is None else [node]


class InfluxReader(ReportQueries):
    # what is stored

    def measurements(self) -> set[str]:
        return {str(r["name"]) for r in self._db.query("SHOW MEASUREMENTS")}

    def fields(self, measurement: str) -> set[str]:
        return {str(r["fieldKey"]) for r in self._db.query(f"SHOW FIELD KEYS FROM {ident(measurement)}")}

    def metric_fields(self) -> list[str]:
        keys = self.fields("reading")
        return [m for m in METRICS if m in keys]

    def reading_clock(self, site: str, node: str, start: datetime, end: datetime) -> list[Row]:
        return self._db.query(
            f'SELECT "seq", "period_s" FROM "reading" WHERE {where(site, [node], start, end)} '
            "ORDER BY time LIMIT 2000"
        )

    # rows, streamed

    def readings(
        self, span: Span, fields: list[str], *, per_node: bool = False, trace: Trace | None = None
    ) -> Iterator[Row]:
        select = ", ".join(ident(f) for f in fields)
        group = ' GROUP BY "node"' if per_node else ""
        cond = where(span.site, span.nodes, span.start, span.end)
        return self._stream(f'SELECT {select} FROM "reading" WHERE {cond}{group}', trace)

    def period_means(
        self, span: Span, metrics: list[str], bucket: timedelta, *, trace: Trace | None = None
    ) -> Iterator[Row]:
        parts = []
        for m in metrics:
            parts += [
                f"mean({ident(m)}) AS {ident(m + '_mean')}",
                f"count({ident(m)}) AS {ident(m + '_count')}",
            ]
        cond = where(span.site, span.nodes, span.start, span.end)
        text = (
            f'SELECT {", ".join(parts)} FROM "reading" WHERE {cond} '
            f'GROUP BY time({every(bucket)}, 1ms), "node" fill(none)'
        )
        for row in self._stream(text, trace):
            yield {**row, "start": bucket_start(int(row["time"]))}

    def recent(self, fields: list[str], seconds: int) -> Iterator[Row]:
        columns = ", ".join([*(ident(f) for f in fields), '"site"', '"node"'])
        return self._db.stream(f'SELECT {columns} FROM "reading" WHERE time > now() - {int(seconds)}s')

    def signed_rows(self, condition: str = "") -> Iterator[Row]:
        cond = f" WHERE {condition}" if condition else ""
        return self._db.stream(f'SELECT * FROM "reading"{cond}')

    # the dashboard

    def latest(self, now: datetime, *, site: str | None = None, node: str | None = None) -> list[Latest]:
        q = (
            f'SELECT * FROM "reading" WHERE {where(site, _nodes(node), EPOCH_START, now)}'
            ' GROUP BY "site", "node" ORDER BY time DESC LIMIT 1'
        )
        out = []
        for row in self._db.query(q):
            values = {m: float(row[m]) for m in METRICS if isinstance(row.get(m), int | float)}
            flags = _flags(row)
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
        self,
        site: str,
        node: str,
        metrics: list[str],
        start: datetime,
        end: datetime,
        every_s: int,
        *,
        align: timedelta = timedelta(0),
    ) -> Series:
        if not metrics:
            return Series(every_s, [], {})
        cols = ", ".join(f"mean({ident(m)}) AS {ident(m)}" for m in metrics)
        # InfluxDB's buckets are [t, t + d) with t = offset (mod d): (b, b + d] is offset b + 1 ms
        offset_ms = (round(align / BUCKET_OFFSET) + 1) % (int(every_s) * 1000)
        q = (
            f'SELECT {cols} FROM "reading" WHERE {where(site, [node], start, end)}'
            f" GROUP BY time({int(every_s)}s{f', {offset_ms}ms' if offset_ms else ''})"
        )
        width = timedelta(seconds=every_s)
        # (start, end] begins just after `start`: the bucket ending at `start` holds nothing of it
        rows = [r for r in self._db.query(q) if bucket_start(int(r["time"])) + width > start]
        times = [bucket_start(int(r["time"])) for r in rows]
        values = {m: [None if r.get(m) is None else float(r[m]) for r in rows] for m in metrics}
        return Series(every_s, times, values)

    def hourly_means(
        self, metric: str, end_hour: datetime, hours: int = 12, *, align: timedelta = timedelta(0)
    ) -> dict[tuple[str, str], list[float | None]]:
        start = end_hour - timedelta(hours=hours)
        offset_ms = (round(align / BUCKET_OFFSET) + 1) % 3_600_000  # as in `series`
        q = (
            f'SELECT mean({ident(metric)}) AS "v" FROM "reading" WHERE {where(None, [], start, end_hour)}'
            f' GROUP BY time(1h{f", {offset_ms}ms" if offset_ms else ""}), "site", "node"'
        )
        out: dict[tuple[str, str], list[float | None]] = {}
        for row in self._db.query(q):
            key = (str(row["site"]), str(row["node"]))
            hour = out.setdefault(key, [None] * hours)
            index = hours - 1 - int((bucket_start(int(row["time"])) - start) / timedelta(hours=1))
            if 0 <= index < hours and row.get("v") is not None:
                hour[index] = float(row["v"])
        return out

    def flagged(
        self, site: str, node: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, list[str]]]:
        q = (
            f'SELECT "flags", "gateway_flags" FROM "reading" WHERE {where(site, [node], start, end)}'
            " AND (\"flags\" != '' OR \"gateway_flags\" != '') LIMIT 5000"
        )
        return [(_time(r), flags) for r in self._db.query(q) if (flags := _flags(r))]

    def alerts(
        self,
        start: datetime,
        end: datetime,
        *,
        site: str | None = None,
        node: str | None = None,
        limit: int = 200,
    ) -> list[AlertEvent]:
        q = (
            f'SELECT * FROM "alert" WHERE {where(site, _nodes(node), start, end)}'
            f" ORDER BY time DESC LIMIT {int(limit)}"
        )
        return [_alert(r) for r in self._db.query(q)]

    def active_alerts(
        self, now: datetime, *, site: str | None = None, node: str | None = None
    ) -> list[AlertEvent]:
        cond = where(site, _nodes(node), EPOCH_START, now)
        q = f'SELECT * FROM "alert" WHERE {cond} GROUP BY * ORDER BY time DESC LIMIT 1'
        last = [_alert(r) for r in self._db.query(q)]
        return sorted((a for a in last if a.state != "cleared"), key=lambda a: a.time, reverse=True)

    def csv_rows(
        self, start: datetime, end: datetime, *, site: str | None = None, node: str | None = None
    ) -> Iterator[Row]:
        day = start
        while day < end:
            stop = min(day + timedelta(days=1), end)
            cond = where(site, _nodes(node), day, stop)
            q = f'SELECT * FROM "reading" WHERE {cond} GROUP BY "site", "node"'
            yield from sorted(self._db.query(q), key=lambda r: (int(r["time"]), r["site"], r["node"]))
            day = stop


def _flags(row: Row) -> list[str]:
    """The node's flags, then those the gateway found on storing it (`ts_shared`)."""
    both = f"{row.get('flags') or ''},{row.get('gateway_flags') or ''}"
    return [f for f in both.split(",") if f]


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _alert(row: Row) -> AlertEvent:
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
        msg_id=str(row["msg_id"]) if row.get("msg_id") is not None else None,
        msg_params=str(row["msg_params"]) if row.get("msg_params") is not None else None,
        tags=extra,
    )
