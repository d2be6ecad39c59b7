"""The read seam (gateway/stores/reader.py) over the hub's PostgreSQL, as one jurisdiction's role.

What the dashboard, `export`, `report`, the evidence bundle and the SensorThings API ask, answered
from the hub's tables through connections switched to the jurisdiction's role (postgres_base.py):
row-level security decides every row, delays included. The hub keeps no roll-ups, so `measurements`
does not name them and the callers read the readings; it names `maintenance` and `observation` when
the role may see field records the sites forwarded (postgres_report.py answers them).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from psycopg import sql

from gateway.stores.postgres_base import (
    EPOCH,
    HOURLY_SELECT,
    METRICS,
    MS,
    PART_PAYLOAD,
    Query,
    alert_of,
    cell,
    condition_sql,
    epoch_ms,
    latest_of,
    metric_expr,
    reading_row,
    span_where,
)
from gateway.stores.postgres_report import HubReportQueries
from gateway.stores.reader import (
    CLOCK_READINGS,
    AlertEvent,
    Latest,
    NodeColumns,
    ObservationQuery,
    Row,
    Series,
    Span,
    StreamInfo,
    Trace,
    node_columns,
)

_END_OF_TIME = datetime(9999, 12, 31, tzinfo=UTC)
READING_FIELDS = ("seq", "flags", "period_s", "signed", "sig", "kid", "received")
HOUR = timedelta(hours=1)


def _project(row: Row, fields: list[str]) -> Row:
    out: Row = {"time": row["time"], "site": row["site"], "node": row["node"]}
    for f in fields:
        if f in row:
            out[f] = row[f]
    return out


FIELDS_TTL_S = 60.0
"""How long the list of stored metrics is kept: the dashboard asks it for every chart, and it is
a DISTINCT over every reading the role may see."""


class PostgresReader(HubReportQueries):
    """Every read as `role`; close it to close its connections."""

    def __init__(self, dsn: str, role: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        super().__init__(dsn, role, monotonic=monotonic)
        self._fields: tuple[float, set[str]] | None = None

    # what is stored

    def measurements(self) -> set[str]:
        row = self.rows(sql.SQL(
            "SELECT EXISTS (SELECT 1 FROM {} r), EXISTS (SELECT 1 FROM node_status),"
            " EXISTS (SELECT 1 FROM alert_event), EXISTS (SELECT 1 FROM maintenance_visit),"
            " EXISTS (SELECT 1 FROM observation)"
        ).format(self.source()))[0]  # fmt: skip
        names = ("reading", "node_status", "alert", "maintenance", "observation")
        return {name for name, present in zip(names, row, strict=True) if present}

    def fields(self, measurement: str) -> set[str]:
        if measurement != "reading":
            return set()
        now = self._monotonic()
        if self._fields is not None and now - self._fields[0] < FIELDS_TTL_S:
            return set(self._fields[1])
        keys = self.stored_metrics()
        fields = {f"{m}{suffix}" for m in keys for suffix in ("", "_raw", "_n", "_cal")}
        fields |= set(READING_FIELDS) if keys else set()
        self._fields = (now, fields)
        return set(fields)

    def stored_metrics(self) -> list[str]:
        """The metrics of the readings the role may see, in the contract's order, asked now (not
        kept): an export's columns must hold every metric a signature covers."""
        query = sql.SQL("SELECT DISTINCT k FROM {} r, jsonb_object_keys(r.metrics) k").format(self.source())
        keys = {str(r[0]) for r in self.rows(query)}
        return [m for m in METRICS if m in keys]

    def metric_fields(self) -> list[str]:
        keys = self.fields("reading")
        return [m for m in METRICS if m in keys]

    def reading_clock(self, site: str, node: str, start: datetime, end: datetime) -> list[Row]:
        query = sql.SQL(
            "SELECT r.ts, r.seq, (r.payload->>'period_s')::int FROM {src} r"
            " WHERE {} ORDER BY r.ts LIMIT {lim}"
        ).format(
            span_where(Span(site, [node], start, end)), src=self.source(), lim=sql.Literal(CLOCK_READINGS)
        )
        return [{"time": epoch_ms(t), "seq": s, "period_s": p} for t, s, p in self.rows(query)]

    # rows, streamed

    def readings(
        self, span: Span, fields: list[str], *, per_node: bool = False, trace: Trace | None = None
    ) -> Iterator[Row]:
        order = "r.node, r.ts, r.seq" if per_node else "r.ts, r.node, r.seq"
        if trace is not None:
            trace(self.text(self.readings_query(span_where(span), order)))
        return (_project(r, fields) for r in self.stream_readings(span_where(span), order))

    def reading_cells(
        self, span: Span, fields: list[str], *, trace: Trace | None = None
    ) -> Iterator[list[str]]:
        for row in self.readings(span, fields, trace=trace):
            yield [str(row["time"]), *(cell(row.get(f)) for f in fields)]

    def period_means(
        self, span: Span, metrics: list[str], bucket: timedelta, *, trace: Trace | None = None
    ) -> Iterator[Row]:
        d = bucket // MS
        parts: list[Query] = []
        for m in metrics:
            x = metric_expr(m)
            parts += [sql.SQL("avg({})").format(x), sql.SQL("count({})").format(x)]
        query = sql.SQL(
            "SELECT r.node, floor((extract(epoch FROM r.ts) * 1000 - 1) / {})::bigint AS k, {}"
            " FROM {src} r WHERE {} GROUP BY r.node, k ORDER BY r.node, k"
        ).format(sql.Literal(d), sql.SQL(", ").join(parts), span_where(span), src=self.source())
        if trace is not None:
            trace(self.text(query))
        for r in self.rows(query):
            row: Row = {"node": r[0], "time": int(r[1]) * d + 1, "start": EPOCH + int(r[1]) * bucket}
            for i, m in enumerate(metrics):
                mean, count = r[2 + 2 * i], r[3 + 2 * i]
                row[f"{m}_mean"] = None if mean is None else float(mean)
                row[f"{m}_count"] = int(count)
            if any(row[f"{m}_count"] for m in metrics):
                yield row

    def recent(self, fields: list[str], seconds: int, *, per_node: bool = False) -> Iterator[Row]:
        where = sql.SQL("r.ts > now() - make_interval(secs => {})").format(sql.Literal(int(seconds)))
        order = "r.site, r.node, r.ts" if per_node else "r.ts, r.site, r.node"
        return (_project(r, fields) for r in self.stream_readings(where, order))

    def recent_nodes(self, fields: list[str], seconds: int) -> Iterator[NodeColumns]:
        return node_columns(self.recent(fields, seconds, per_node=True), fields)

    def stored_readings(self, span: Span) -> Iterator[Row]:
        return self.stream_readings(span_where(span))

    def first_reading_time(self, site: str) -> datetime | None:
        query = sql.SQL("SELECT min(r.ts) FROM {} r WHERE r.site = {}").format(
            self.source(), sql.Literal(site)
        )
        row = self.rows(query)
        return row[0][0] if row else None

    def signed_rows(self, condition: str = "") -> Iterator[Row]:
        """Every reading the role may see; a condition in the backend's own words is not taken on
        the hub (verify an export or an evidence bundle instead, docs/region.md)."""
        if condition:
            raise ValueError("the hub takes no query condition; export the period and verify the file")
        return self.stream_readings(sql.SQL("true"))

    # the dashboard

    def nodes(self, site: str | None = None) -> list[tuple[str, str]]:
        if self.shares() != ([], []):
            # the nodes with a row the role may see: asked as each node's latest at the end of time,
            # a probe per node and window, where EXISTS over the source would have the policy judge
            # (and refuse) every reading of a node the role sees only part of
            return [(x.site, x.node) for x in self.latest(_END_OF_TIME, site=site)]
        cond = sql.SQL("") if site is None else sql.SQL(" AND n.site = {}").format(sql.Literal(site))
        query = sql.SQL(
            "SELECT n.site, n.id FROM node n WHERE EXISTS"
            " (SELECT 1 FROM {src} r WHERE r.site = n.site AND r.node = n.id){} ORDER BY 1, 2"
        ).format(cond, src=self.source())
        return [(str(a), str(b)) for a, b in self.rows(query)]

    def latest(self, now: datetime, *, site: str | None = None, node: str | None = None) -> list[Latest]:
        cond: list[Query] = [sql.SQL("true")]
        if site is not None:
            cond.append(sql.SQL("n.site = {}").format(sql.Literal(site)))
        if node is not None:
            cond.append(sql.SQL("n.id = {}").format(sql.Literal(node)))
        partial, hourly = self.shares()
        if not partial and not hourly:
            # one index probe per node (reading_site_node_ts), whatever the history stored
            newest = (
                "SELECT * FROM reading r WHERE r.site = n.site AND r.node = n.id AND r.ts <= {at}"
                " ORDER BY r.ts DESC LIMIT 1"
            )
        else:
            branches = [_LATEST_WHOLE] + ([_LATEST_PART] if partial else [])
            one_hour = HOURLY_SELECT.replace("{extra}", _NEWEST_HOUR)
            branches += [_LATEST_HOURLY.replace("{hourly}", one_hour)] if hourly else []
            newest = "SELECT * FROM (" + " UNION ALL ".join(branches) + ") r ORDER BY r.ts DESC LIMIT 1"
        query = sql.SQL(
            "SELECT {} FROM node n CROSS JOIN LATERAL ({newest}) r WHERE {} ORDER BY 1, 2"
        ).format(
            sql.SQL(READING_COLUMNS_ALIASED),
            sql.SQL(" AND ").join(cond),
            newest=sql.SQL(newest).format(
                at=sql.Literal(now), partial=sql.Literal(partial), sites=sql.Literal(hourly),
                metrics=sql.Literal(list(METRICS)),
            ),
        )  # fmt: skip
        return [latest_of(reading_row(*r)) for r in self.rows(query)]

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
        width = timedelta(seconds=every_s)
        d, a = width // MS, align // MS
        means = sql.SQL(", ").join(sql.SQL("avg({})").format(metric_expr(m)) for m in metrics)
        query = sql.SQL(
            "SELECT floor((extract(epoch FROM r.ts) * 1000 - {} - 1) / {})::bigint AS k, {}"
            " FROM {src} r WHERE {} GROUP BY k"
        ).format(
            sql.Literal(a),
            sql.Literal(d),
            means,
            span_where(Span(site, [node], start, end)),
            src=self.source(),
        )
        found = {int(r[0]): r[1:] for r in self.rows(query)}
        first, last = (epoch_ms(start) - a) // d, (epoch_ms(end) - a - 1) // d
        ks = list(range(first, last + 1))
        times = [EPOCH + align + k * width for k in ks]
        values: dict[str, list[float | None]] = {m: [] for m in metrics}
        for k in ks:
            row = found.get(k)
            for i, m in enumerate(metrics):
                v = None if row is None else row[i]
                values[m].append(None if v is None else float(v))
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
        start = end_hour - hours * HOUR
        a = align // MS
        cond = [sql.SQL("r.ts > {} AND r.ts <= {}").format(sql.Literal(start), sql.Literal(end_hour))]
        if site is not None:
            cond.append(sql.SQL("r.site = {}").format(sql.Literal(site)))
        if nodes:
            cond.append(sql.SQL("r.node = ANY({})").format(sql.Literal(list(nodes))))
        query = sql.SQL(
            "SELECT r.site, r.node, floor((extract(epoch FROM r.ts) * 1000 - {} - 1) / 3600000)::bigint AS k,"
            " avg({}) FROM {src} r WHERE {} GROUP BY 1, 2, 3"
        ).format(sql.Literal(a), metric_expr(metric), sql.SQL(" AND ").join(cond), src=self.source())
        out: dict[tuple[str, str], list[float | None]] = {}
        for s, n, k, v in self.rows(query):
            hour = out.setdefault((str(s), str(n)), [None] * hours)
            index = hours - 1 - int((EPOCH + align + int(k) * HOUR - start) / HOUR)
            if 0 <= index < hours and v is not None:
                hour[index] = float(v)
        return out

    def flagged(
        self, site: str, node: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, list[str]]]:
        query = sql.SQL(
            "SELECT r.ts, ARRAY(SELECT jsonb_array_elements_text(r.payload->'flags')) FROM {src} r"
            " WHERE {} AND jsonb_array_length(r.payload->'flags') > 0 ORDER BY r.ts LIMIT 5000"
        ).format(span_where(Span(site, [node], start, end)), src=self.source())
        return [(t, list(f)) for t, f in self.rows(query)]

    def alerts(
        self,
        start: datetime,
        end: datetime,
        *,
        site: str | None = None,
        node: str | None = None,
        limit: int = 200,
    ) -> list[AlertEvent]:
        cond = [
            sql.SQL("at > {} AND at <= {}").format(sql.Literal(start), sql.Literal(end)),
            *_where(site, node),
        ]
        query = sql.SQL(
            "SELECT site, node, at, payload FROM alert_event WHERE {} ORDER BY at DESC LIMIT {}"
        ).format(sql.SQL(" AND ").join(cond), sql.Literal(int(limit)))
        return [alert_of(*r) for r in self.rows(query)]

    def active_alerts(
        self, now: datetime, *, site: str | None = None, node: str | None = None
    ) -> list[AlertEvent]:
        cond = [sql.SQL("at <= {}").format(sql.Literal(now)), *_where(site, node)]
        query = sql.SQL(
            "SELECT DISTINCT ON (site, node, payload->>'rule', payload->>'metric') site, node, at, payload"
            " FROM alert_event WHERE {} ORDER BY site, node, payload->>'rule', payload->>'metric', at DESC"
        ).format(sql.SQL(" AND ").join(cond))
        last = [alert_of(*r) for r in self.rows(query)]
        return sorted((a for a in last if a.state != "cleared"), key=lambda a: a.time, reverse=True)

    def csv_rows(
        self, start: datetime, end: datetime, *, site: str | None = None, node: str | None = None
    ) -> Iterator[Row]:
        cond: list[Query] = [sql.SQL("r.ts > {} AND r.ts <= {}").format(sql.Literal(start), sql.Literal(end))]
        cond += _where(site, node, prefix="r.")
        return self.stream_readings(sql.SQL(" AND ").join(cond), "r.ts, r.site, r.node, r.seq")

    # open data (SensorThings)

    def streams(self, now: datetime) -> list[StreamInfo]:
        at = sql.Literal(now)
        spans = self.rows(sql.SQL(
            "SELECT r.site, r.node, k, min(r.ts), max(r.ts) FROM {src} r, jsonb_object_keys(r.metrics) k"
            " WHERE r.ts <= {} GROUP BY 1, 2, 3"
        ).format(at, src=self.source()))  # fmt: skip
        cals = {
            (s, n, k): c
            for s, n, k, c in self.rows(
                sql.SQL(
                    "SELECT DISTINCT ON (r.site, r.node, k) r.site, r.node, k,"
                    " r.payload->'metrics'->k->>'cal'"
                    " FROM {src} r, jsonb_object_keys(r.metrics) k WHERE r.ts <= {}"
                    " ORDER BY r.site, r.node, k, r.ts DESC"
                ).format(at, src=self.source())
            )
        }
        order = {m: i for i, m in enumerate(METRICS)}
        out = [
            StreamInfo(s, n, k, first, last, cals.get((s, n, k)))
            for s, n, k, first, last in spans
            if k in order
        ]
        return sorted(out, key=lambda x: (x.site, x.node, order[x.metric]))

    def _observation_where(self, query: ObservationQuery) -> Query:
        parts = [
            span_where(Span(query.site, [query.node], query.start, query.end)),
            sql.SQL("r.payload->'metrics' ? {}").format(sql.Literal(query.metric)),
        ]
        if query.condition is not None:
            parts.append(condition_sql(query.condition, metric_expr(query.metric)))
        return sql.SQL(" AND ").join(parts)

    def observations(self, query: ObservationQuery) -> list[Row]:
        order = "DESC" if query.newest_first else "ASC"
        text = sql.SQL("SELECT {} FROM {src} r WHERE {} ORDER BY r.ts {} LIMIT {} OFFSET {}").format(
            sql.SQL(READING_COLUMNS_ALIASED), self._observation_where(query), sql.SQL(order),
            sql.Literal(int(query.limit)), sql.Literal(int(query.offset)), src=self.source(),
        )  # fmt: skip
        return [reading_row(*r) for r in self.rows(text)]

    def count_observations(self, query: ObservationQuery) -> int:
        text = sql.SQL("SELECT count(*) FROM {} r WHERE {}").format(
            self.source(), self._observation_where(query)
        )
        return int(self.rows(text)[0][0])

    # the hub's own: the keys a jurisdiction may see, for /api/v1/keys and the evidence bundle

    def key_records(self, site: str | None = None) -> list[dict[str, Any]]:
        """The node keys' records as their site vouched for them (row-level security: the role's
        own sites' keys, and those of keys that signed a reading it may see)."""
        cond = sql.SQL("") if site is None else sql.SQL(" WHERE site = {}").format(sql.Literal(site))
        query = sql.SQL("SELECT record FROM node_key{} ORDER BY site, node, kid").format(cond)
        return [dict(r[0]) for r in self.rows(query)]


READING_COLUMNS_ALIASED = "r.site, r.node, r.ts, r.received, r.payload"

# A node's latest reading for a role an agreement shares part of a site with: the newest of what it
# may see whole, of the parts of readings it may see, and of the hourly means — each looked for
# inside one of the role's windows (hub_windows: its times are index bounds), so each is an index
# probe per node and window rather than every reading of the node judged by the policy and sorted.
# `reading_part_newest` is in the order (site, node, ts DESC) itself and takes only a LIMIT: with an
# ORDER BY outside it PostgreSQL would build and sort every part of the node (postgres_schema.sql).
_LATEST_WHOLE = """SELECT x.* FROM unnest((SELECT hub_windows(current_user))) w CROSS JOIN LATERAL (
   SELECT r.site, r.node, r.ts, r.received, r.payload FROM reading r
    WHERE r.site = n.site AND r.node = n.id AND r.ts <= {at}
      AND r.ts >= w.lo AND r.ts < w.hi AND r.ts <= now() - w.lag ORDER BY r.ts DESC LIMIT 1) x
  WHERE w.site = n.site AND w.metrics IS NULL AND w.form = 'raw'"""
_LATEST_PART = (
    """SELECT x.* FROM unnest((SELECT hub_windows(current_user))) w CROSS JOIN LATERAL (
   SELECT v.site, v.node, v.ts, v.received, """
    + PART_PAYLOAD
    + """ FROM reading_part_newest v
    WHERE v.site = n.site AND v.node = n.id AND v.ts <= {at}
      AND v.ts >= w.lo AND v.ts < w.hi AND v.ts <= now() - w.lag LIMIT 1) x
  WHERE w.site = n.site AND w.site = ANY({partial}) AND w.metrics IS NOT NULL AND w.form = 'raw'"""
)
# The hourly means: the newest hour the role may see a mean of, found per window and metric in the
# key (site, node, metric, hour) backwards, and that hour's means alone grouped (the key's entries
# of the node are read to find the hour's, in the index alone: no row of another hour). If every mean of
# that hour is hidden because the role sees those metrics raw (a raw and an hourly agreement of the
# same metric), this branch gives nothing for the node and its readings of those metrics answer.
_NEWEST_HOUR = """ AND h.site = n.site AND h.node = n.id AND h.hour = (
   SELECT max(t.hour) FROM unnest((SELECT hub_windows(current_user))) w
    CROSS JOIN LATERAL unnest(coalesce(w.metrics, {metrics})) m (metric)
    CROSS JOIN LATERAL (SELECT k.hour FROM reading_hourly k
      WHERE k.site = n.site AND k.node = n.id AND k.metric = m.metric
        AND k.hour <= {at}::timestamptz - interval '30 minutes'
        AND k.hour >= w.lo - interval '1 hour' AND k.hour < w.hi - interval '1 hour'
        AND k.hour <= now() - w.lag - interval '1 hour'
      ORDER BY k.hour DESC LIMIT 1) t
   WHERE w.site = n.site AND w.form = 'hourly')"""
_LATEST_HOURLY = """(SELECT h.site, h.node, h.ts, h.received, h.payload FROM ({hourly}) h
   WHERE h.ts <= {at} ORDER BY h.ts DESC LIMIT 1)"""


def _where(site: str | None, node: str | None, prefix: str = "") -> list[Query]:
    out: list[Query] = []
    if site is not None:
        out.append(sql.SQL(prefix + "site = {}").format(sql.Literal(site)))
    if node is not None:
        out.append(sql.SQL(prefix + "node = {}").format(sql.Literal(node)))
    return out
