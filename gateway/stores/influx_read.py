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
from gateway.stores.reader import (
    CLOCK_READINGS,
    AlertEvent,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Latest,
    Negation,
    NodeColumns,
    ObservationQuery,
    Row,
    Series,
    Span,
    StreamInfo,
    Trace,
)
from gateway.stores.rollups import Period
from gateway.stores.timesplit import Piece, split

METRICS: tuple[str, ...] = tuple(m.value for m in Metric)
ALERT_FIELDS = (
    "state",
    "value",
    "limit",
    "average",
    "severity",
    "late",
    "message",
    "msg_id",
    "msg_params",
    "peak",
    "started",
    "ended",
    "id",
    "acked_by",
    "unit",
)
EPOCH_START = datetime(2000, 1, 1, tzinfo=UTC)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOUR, DAY, TICK = timedelta(hours=1), timedelta(days=1), timedelta(milliseconds=1)
LATEST_WINDOWS = (timedelta(hours=1), timedelta(days=3), timedelta(days=40), timedelta(days=400))
"""Where `latest` looks for a node's last reading, nearest first, before the whole history."""


def _time(row: Row) -> datetime:
    return datetime.fromtimestamp(int(row["time"]) / 1000, tz=UTC)


def _node_columns(
    key: tuple[str, str], names: list[str], pieces: list[list[list[Any]]], fields: list[str]
) -> NodeColumns:
    values = pieces[0] if len(pieces) == 1 else [v for p in pieces for v in p]
    columns = dict(zip(names, (list(c) for c in zip(*values, strict=True)), strict=True))
    return NodeColumns(*key, columns["time"], {f: columns.get(f) or [None] * len(values) for f in fields})


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
            f"ORDER BY time LIMIT {CLOCK_READINGS}"
        )

    # rows, streamed

    def readings(
        self, span: Span, fields: list[str], *, per_node: bool = False, trace: Trace | None = None
    ) -> Iterator[Row]:
        select = ", ".join(ident(f) for f in fields)
        group = ' GROUP BY "node"' if per_node else ""
        cond = where(span.site, span.nodes, span.start, span.end)
        return self._stream(f'SELECT {select} FROM "reading" WHERE {cond}{group}', trace)

    def reading_cells(
        self, span: Span, fields: list[str], *, trace: Trace | None = None
    ) -> Iterator[list[str]]:
        select = ", ".join(ident(f) for f in fields)
        text = f'SELECT {select} FROM "reading" WHERE {where(span.site, span.nodes, span.start, span.end)}'
        if trace is not None:
            trace(text)
        return self._db.stream_cells(text, fields)

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

    def recent_nodes(self, fields: list[str], seconds: int) -> Iterator[NodeColumns]:
        # Columns straight from the JSON's `values` lists (zip in C), no dict per row: 1.4 s of CPU
        # for a day of 1,000 nodes where rows took about 5. CSV is no cheaper here: its reader
        # splits as fast, but then every cell is text to convert in Python (7 s).
        columns = ", ".join(ident(f) for f in fields)
        text = f'SELECT {columns} FROM "reading" WHERE time > now() - {int(seconds)}s GROUP BY "site", "node"'
        key: tuple[str, str] | None = None
        pieces: list[list[list[Any]]] = []
        names: list[str] = []
        for tags, piece_names, values in self._db.stream_series(text):
            here = (str(tags.get("site")), str(tags.get("node")))
            if here != key or piece_names != names:
                if key is not None:
                    yield _node_columns(key, names, pieces, fields)
                key, names, pieces = here, piece_names, []
            pieces.append(values)  # a series cut by the chunk size goes on in the next piece
        if key is not None:
            yield _node_columns(key, names, pieces, fields)

    def stored_readings(self, span: Span) -> Iterator[Row]:
        cond = where(span.site, span.nodes, span.start, span.end)
        return self._db.stream(f'SELECT * FROM "reading" WHERE {cond} ORDER BY time')

    def first_reading_time(self, site: str) -> datetime | None:
        cond = where(site, [], EPOCH_START, datetime.now(UTC) + timedelta(days=1))
        rows = self._db.query(f'SELECT first("seq") FROM "reading" WHERE {cond}')
        return _time(rows[0]) if rows else None

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
        if every_s % 3600 == 0 and align % HOUR == timedelta(0) and end - start > DAY:
            rolled = self._rolled_series(site, node, metrics, start, end, every_s, align)
            if rolled is not None:
                return rolled
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

    def _rolled_series(
        self,
        site: str,
        node: str,
        metrics: list[str],
        start: datetime,
        end: datetime,
        every_s: int,
        align: timedelta,
    ) -> Series | None:
        """`series` from the roll-ups: whole hours (or days) per bucket, each bucket's mean weighted
        by its readings. None when the node has no roll-ups in the span (history from before
        roll-ups, not rebuilt), so the raw readings answer."""
        width = timedelta(seconds=every_s)
        period: Period = "1d" if every_s % 86400 == 0 and align % DAY == timedelta(0) else "1h"
        first = EPOCH + align + (start - EPOCH - align) // width * width  # the bucket holding start+
        last = EPOCH + align + (end - TICK - EPOCH - align) // width * width
        count = (last - first) // width + 1
        fields = [f"{m}_{s}" for m in metrics for s in ("mean", "count")]
        sums = {m: [0.0] * count for m in metrics}
        counts = {m: [0] * count for m in metrics}
        found = False
        for row in self.rollups(Span(site, [node], first, last + width), period, fields):
            found = True
            i = (row["start"] - first) // width
            for m in metrics:
                n, mean = row.get(f"{m}_count"), row.get(f"{m}_mean")
                if n and mean is not None and 0 <= i < count:
                    sums[m][i] += float(mean) * int(n)
                    counts[m][i] += int(n)
        if not found:
            return None
        times = [first + i * width for i in range(count)]
        values = {
            m: [sums[m][i] / counts[m][i] if counts[m][i] else None for i in range(count)] for m in metrics
        }
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

    # open data (SensorThings)

    def streams(self, now: datetime) -> list[StreamInfo]:
        keys = self.fields("reading")
        cond = where(None, [], EPOCH_START, now)
        out = []
        for m in (m for m in METRICS if m in keys and f"{m}_n" in keys):
            by = ' GROUP BY "site", "node"'
            n = ident(f"{m}_n")
            firsts = self._db.query(f'SELECT first({n}) FROM "reading" WHERE {cond}{by}')
            lasts = {
                (r["site"], r["node"]): _time(r)
                for r in self._db.query(f'SELECT last({n}) FROM "reading" WHERE {cond}{by}')
            }
            cals: dict[tuple[str, str], tuple[datetime, str]] = {}
            if f"{m}_cal" in keys:
                for r in self._db.query(f'SELECT last({ident(m + "_cal")}) FROM "reading" WHERE {cond}{by}'):
                    cals[(r["site"], r["node"])] = (_time(r), str(r["last"]))
            for r in firsts:
                key = (str(r["site"]), str(r["node"]))
                last = lasts.get(key, _time(r))
                cal = cals.get(key)
                # the calibration in force is the last reading's: none when it came uncalibrated
                out.append(StreamInfo(*key, m, _time(r), last, cal[1] if cal and cal[0] == last else None))
        order = {m: i for i, m in enumerate(METRICS)}
        return sorted(out, key=lambda s: (s.site, s.node, order[s.metric]))

    def observations(self, query: ObservationQuery) -> list[Row]:
        pieces = split(query.start, query.end, query.condition)
        if query.newest_first:
            pieces.reverse()
        out: list[Row] = []
        offset, limit = query.offset, query.limit
        for piece in pieces:
            if limit <= 0:
                break
            if offset and len(pieces) > 1:  # skip whole pieces by their counts
                count = self._count(query, piece)
                if count <= offset:
                    offset -= count
                    continue
            order = "DESC" if query.newest_first else "ASC"
            rows = self._db.query(
                f'SELECT * FROM "reading" WHERE {_piece(query, piece)} '
                f"ORDER BY time {order} LIMIT {int(limit)} OFFSET {int(offset)}"
            )
            offset, limit = 0, limit - len(rows)
            out += rows
        return out

    def count_observations(self, query: ObservationQuery) -> int:
        return sum(self._count(query, p) for p in split(query.start, query.end, query.condition))

    def _count(self, query: ObservationQuery, piece: Piece) -> int:
        n = ident(f"{query.metric}_n")
        rows = self._db.query(f'SELECT count({n}) FROM "reading" WHERE {_piece(query, piece)}')
        return int(rows[0]["count"]) if rows else 0


_SYMBOL = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_OPPOSITE = {"eq": "ne", "ne": "eq", "gt": "le", "ge": "lt", "lt": "ge", "le": "gt"}


def _instant(ts: datetime) -> str:
    """A time literal to the microsecond: a filter's time is compared as given, not rounded."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: give UTC times")
    return string(ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"))


def _value_condition(condition: Condition, field: str, negated: bool = False) -> str:
    """InfluxQL has no NOT: a negation is pushed down to the comparisons (De Morgan), which is
    exact here because a reading without the value matches neither a comparison nor its opposite."""
    if isinstance(condition, Compare):
        if condition.subject != "value" or isinstance(condition.operand, datetime):
            raise ValueError("time comparisons are decided by timesplit before rendering")
        op = _OPPOSITE[condition.op] if negated else condition.op
        return f"{ident(field)} {_SYMBOL[op]} {float(condition.operand)!r}"
    if isinstance(condition, Negation):
        return _value_condition(condition.part, field, not negated)
    joiner = " OR " if isinstance(condition, AnyOf) != negated else " AND "
    assert isinstance(condition, AllOf | AnyOf)
    return "(" + joiner.join(_value_condition(p, field, negated) for p in condition.parts) + ")"


def _piece(query: ObservationQuery, piece: Piece) -> str:
    """The node, the piece's time bounds, membership of the metric's stream (its `_n` is written
    for every reading that has the metric, null value or not) and the piece's value condition."""
    parts = [
        f'"site" = {string(query.site)}',
        f'"node" = {string(query.node)}',
        f"time {'>=' if piece.start_closed else '>'} {_instant(piece.start)}",
        f"time {'<=' if piece.end_closed else '<'} {_instant(piece.end)}",
        f"{ident(query.metric + '_n')} >= 0",
    ]
    if piece.condition is not None:
        parts.append(_value_condition(piece.condition, query.metric))
    return " AND ".join(parts)


def _flags(row: Row) -> list[str]:
    """The node's flags, then those the gateway found on storing it (`ts_shared`)."""
    both = f"{row.get('flags') or ''},{row.get('gateway_flags') or ''}"
    return [f for f in both.split(",") if f]


def _latest(row: Row) -> Latest:
    values = {m: float(row[m]) for m in METRICS if isinstance(row.get(m), int | float)}
    flags = _flags(row)
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
        peak=_float(row.get("peak")),
        started=_iso(row.get("started")),
        ended=_iso(row.get("ended")),
        alert_id=str(row["id"]) if row.get("id") is not None else None,
        acked_by=str(row["acked_by"]) if row.get("acked_by") is not None else None,
        unit=str(row["unit"]) if row.get("unit") is not None else None,
    )


def _iso(value: Any) -> datetime | None:
    """An RFC 3339 field (`started`, `ended`) as the alert engine stores it; None when absent."""
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
