"""The reader protocol over InfluxQL, for InfluxDB 1.x and, through its v1-compatible `/query`, 2.x.

One class, one HTTP client (InfluxV1's `query` and `stream`). The dashboard's and the restart's
queries are here; the report's aggregates, whose text it prints, are in influx_report.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from contract.metrics import Metric
from gateway.stores.influx_report import ReportQueries
from gateway.stores.influxql import BUCKET_OFFSET, bucket_start, every, ident, string, where
from gateway.stores.reader import AlertEvent, Latest, Row, Series, Span, Trace

METRICS: tuple[str, ...] = tuple(m.value for m in Metric)
ALERT_FIELDS = ("state", "value", "limit", "average", "severity", "late", "message", "msg_id", "msg_params")
EPOCH_START = datetime(2000, 1, 1, tzinfo=UTC)
LATEST_WINDOWS = (timedelta(hours=1), timedelta(days=3), timedelta(days=40), timedelta(days=400))
"""Where `latest` looks for a node's last reading, nearest first, before the whole history."""


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

    def recent(self, fields: list[str], seconds: int, *, per_node: bool = False) -> Iterator[Row]:
        cond = f"time > now() - {int(seconds)}s"
        if per_node:  # (InfluxDB sends series one after another: a third of the time for a day)
            columns = ", ".join(ident(f) for f in fields)
            return self._db.stream(f'SELECT {columns} FROM "reading" WHERE {cond} GROUP BY "site", "node"')
        columns = ", ".join([*(ident(f) for f in fields), '"site"', '"node"'])
        return self._db.stream(f'SELECT {columns} FROM "reading" WHERE {cond}')

    def signed_rows(self, condition: str = "") -> Iterator[Row]:
        cond = f" WHERE {condition}" if condition else ""
        return self._db.stream(f'SELECT * FROM "reading"{cond}')

    # the dashboard

    def latest(self, now: datetime, *, site: str | None = None, node: str | None = None) -> list[Latest]:
        # The nodes there are come from the series index (no data is read); each is then looked for
        # in the last hour, and only the ones not found there in wider windows. A query from the
        # epoch read every shard of the whole history (220-309 ms for 20 nodes with a year stored),
        # so the cost grew with the past; this way it is that of the last hour, plus a little per
        # node that has been silent for longer.
        expected = self._series_keys(site, node)
        found: dict[tuple[str, str], Latest] = {}
        for start in [*(now - w for w in LATEST_WINDOWS), EPOCH_START]:
            missing = expected - found.keys()
            if not missing:
                break
            every_node = node is not None or missing == expected
            nodes = _nodes(node) if every_node else sorted({n for _, n in missing})
            q = (
                f'SELECT * FROM "reading" WHERE {where(site, nodes, max(start, EPOCH_START), now)}'
                ' GROUP BY "site", "node" ORDER BY time DESC LIMIT 1'
            )
            for row in self._db.query(q):
                key = (str(row["site"]), str(row["node"]))
                if key in missing:
                    found[key] = _latest(row)
        return [found[k] for k in sorted(found)]

    def nodes(self, site: str | None = None) -> list[tuple[str, str]]:
        return sorted(self._series_keys(site, None))

    def _series_keys(self, site: str | None, node: str | None) -> set[tuple[str, str]]:
        """(site, node) of every series of readings, from InfluxDB's index: it costs the same at a
        day and at a year, and a node silent for months is still in it."""
        cond = [f'"site" = {string(site)}'] if site is not None else []
        cond += [f'"node" = {string(node)}'] if node is not None else []
        text = 'SHOW SERIES FROM "reading"' + (f" WHERE {' AND '.join(cond)}" if cond else "")
        out = set()
        for row in self._db.query(text):
            tags = _series_tags(str(row.get("key", "")))
            if "site" in tags and "node" in tags:
                out.add((tags["site"], tags["node"]))
        return out

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
        self,
        metric: str,
        end_hour: datetime,
        hours: int = 12,
        *,
        align: timedelta = timedelta(0),
        site: str | None = None,
        nodes: list[str] | None = None,
    ) -> dict[tuple[str, str], list[float | None]]:
        start = end_hour - timedelta(hours=hours)
        offset_ms = (round(align / BUCKET_OFFSET) + 1) % 3_600_000  # as in `series`
        cond = where(site, nodes or [], start, end_hour)
        q = (
            f'SELECT mean({ident(metric)}) AS "v" FROM "reading" WHERE {cond}'
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
            f'SELECT "flags" FROM "reading" WHERE {where(site, [node], start, end)}'
            " AND \"flags\" != '' LIMIT 5000"
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


def _latest(row: Row) -> Latest:
    values = {m: float(row[m]) for m in METRICS if isinstance(row.get(m), int | float)}
    flags = [f for f in str(row.get("flags") or "").split(",") if f]
    seq = row.get("seq")
    return Latest(
        str(row["site"]), str(row["node"]), _time(row), int(seq) if seq is not None else None, values, flags
    )


_KEY_PART = re.compile(r"((?:[^,=\\]|\\.)*)=((?:[^,\\]|\\.)*)")
_UNESCAPE = re.compile(r"\\(.)")


def _series_tags(key: str) -> dict[str, str]:
    """The tags of a series key as SHOW SERIES prints it: `reading,node=a,site=s1`, with `,`, `=`
    and spaces in a tag escaped by a backslash (line protocol's rules)."""
    head = re.match(r"(?:[^,\\]|\\.)*", key)
    rest = key[head.end() :] if head else key
    return {
        _UNESCAPE.sub(r"\1", m.group(1)): _UNESCAPE.sub(r"\1", m.group(2)) for m in _KEY_PART.finditer(rest)
    }


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
