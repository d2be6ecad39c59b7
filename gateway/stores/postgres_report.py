"""The report's aggregates over the hub's PostgreSQL, each query's text traced as it runs.

The text a trace receives is the SQL itself with its values written in: a regulator who reads for
the same jurisdiction can paste it into `psql` after `SET ROLE <role>` and get the same numbers,
row-level security included. Buckets are (b, b + d], b a multiple of d from the epoch; a row's
`time` is the bucket's label as the InfluxQL reader gives it (its start plus 1 ms), so the report
reads both backends alike.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql

from contract.wire import format_ts
from gateway.stores.postgres_base import (
    MS,
    PostgresBase,
    Query,
    epoch_ms,
    from_ms,
    metric_expr,
    span_where,
)
from gateway.stores.reader import Aggregate, Fill, Row, Span, Total, Trace
from gateway.stores.rollups import Period

_SQL_OF: dict[str, str] = {"mean": "avg({x})", "count": "count({x})", "max": "max({x})"}
_SELECTORS = {
    "max": "(array_agg(r.ts ORDER BY {x} DESC, r.ts) FILTER (WHERE {x} IS NOT NULL))[1]",
    "first": "(array_agg(r.ts ORDER BY r.ts) FILTER (WHERE {x} IS NOT NULL))[1]",
    "last": "(array_agg(r.ts ORDER BY r.ts DESC) FILTER (WHERE {x} IS NOT NULL))[1]",
}
_VALUES = {
    "first": "(array_agg({x} ORDER BY r.ts) FILTER (WHERE {x} IS NOT NULL))[1]",
    "last": "(array_agg({x} ORDER BY r.ts DESC) FILTER (WHERE {x} IS NOT NULL))[1]",
}


def _number(value: Any) -> Any:
    """Decimal averages and counts as Python numbers, as the InfluxQL reader's JSON gives them."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return float(value)


class HubReportQueries(PostgresBase):
    def _traced(self, query: Query, trace: Trace | None) -> Query:
        if trace is not None:
            trace(self.text(query))
        return query

    def aggregate(
        self,
        span: Span,
        column: str,
        functions: list[Aggregate],
        *,
        bucket: timedelta | None = None,
        fill: Fill | None = None,
        per_node: bool = True,
        flag: str | None = None,
        gateway_flag: str | None = None,
        signed: bool = False,
        equals: str | None = None,
        trace: Trace | None = None,
    ) -> Iterator[Row]:
        x = metric_expr(column)
        cond = [span_where(span)]
        if flag is not None:
            cond.append(sql.SQL("r.payload->'flags' ? {}").format(sql.Literal(flag)))
        if gateway_flag is not None:  # what a site's gateway found on storing: not forwarded
            cond.append(sql.SQL("false"))
        if signed:
            cond.append(sql.SQL("r.payload ? 'sig'"))
        if equals is not None:
            cond.append(sql.SQL("{} = {}").format(x, sql.Literal(equals)))
        where = sql.SQL(" AND ").join(cond)
        if functions == ["distinct"]:
            return self._distinct(x, where, per_node, trace)
        keys: list[Query] = []
        group: list[Query] = []
        if per_node or bucket is not None:
            keys.append(sql.SQL("r.node AS node"))
            group.append(sql.SQL("r.node"))
        if bucket is not None:
            d = bucket // MS
            keys.append(sql.SQL("floor((extract(epoch FROM r.ts) * 1000 - 1) / {})::bigint AS k").format(
                sql.Literal(d)))  # fmt: skip
            group.append(sql.SQL("k"))
        picks = [sql.SQL(_VALUES.get(f, _SQL_OF.get(f, "")).format(x="{x}")).format(x=x) for f in functions]
        selects = [*keys, *(sql.SQL("{} AS {}").format(p, sql.Identifier(f)) for p, f in
                            zip(picks, functions, strict=True))]  # fmt: skip
        one_selector = len(functions) == 1 and functions[0] in _SELECTORS and bucket is None
        if one_selector:  # InfluxQL gives a lone selector the time of the point it selected
            selects.append(sql.SQL(_SELECTORS[functions[0]].format(x="{x}")).format(x=x) + sql.SQL(" AS at"))
        query = sql.SQL("SELECT {} FROM {} r WHERE {}").format(
            sql.SQL(", ").join(selects), self.source(), where
        )
        if group:
            query += sql.SQL(" GROUP BY {} ORDER BY {}").format(sql.SQL(", ").join(group),
                                                               sql.SQL(", ").join(group))  # fmt: skip
        query += sql.SQL(" HAVING count(*) > 0") if not group else sql.SQL("")
        rows = self.rows(self._traced(query, trace))
        return self._aggregate_rows(rows, span, functions, bucket, fill, bool(group), one_selector)

    def _aggregate_rows(
        self,
        rows: list[tuple[Any, ...]],
        span: Span,
        functions: list[Aggregate],
        bucket: timedelta | None,
        fill: Fill | None,
        has_node: bool,
        one_selector: bool,
    ) -> Iterator[Row]:
        names = list(functions)
        if bucket is None:
            for r in rows:
                i = 1 if has_node else 0
                out: Row = {} if not has_node else {"node": r[0]}
                out.update({f: _number(v) for f, v in zip(names, r[i : i + len(names)], strict=True)})
                if one_selector:
                    at = r[i + len(names)]
                    out["time"] = epoch_ms(at) if at is not None else epoch_ms(span.start)
                else:
                    out["time"] = epoch_ms(span.start)
                yield out
            return
        d = bucket // MS
        by_node: dict[str, dict[int, tuple[Any, ...]]] = {}
        for r in rows:
            by_node.setdefault(str(r[0]), {})[int(r[1])] = r[2:]
        first, last = epoch_ms(span.start) // d, (epoch_ms(span.end) - 1) // d
        empty = {"count": 0} if fill == "zero" else {}
        for node in sorted(by_node):
            buckets = by_node[node]
            for k in range(first, last + 1) if fill != "none" else sorted(buckets):
                values = buckets.get(k)
                if values is None:
                    row: Row = {f: (0 if fill == "zero" else empty.get(f)) for f in names}
                else:
                    row = {f: _number(v) for f, v in zip(names, values, strict=True)}
                start = from_ms(k * d)
                yield {"node": node, "time": k * d + 1, "start": start, **row}

    def _distinct(self, x: Query, where: Query, per_node: bool, trace: Trace | None) -> Iterator[Row]:
        node = sql.SQL("r.node, ") if per_node else sql.SQL("")
        query = sql.SQL("SELECT DISTINCT {}{} FROM {} r WHERE {} AND {} IS NOT NULL ORDER BY 1").format(
            node, x, self.source(), where, x
        )
        for r in self.rows(self._traced(query, trace)):
            yield {"node": r[0], "distinct": r[1], "time": 0} if per_node else {"distinct": r[0], "time": 0}

    def rollups(
        self,
        span: Span,
        period: Period,
        fields: list[str],
        *,
        equals: tuple[str, str] | None = None,
        trace: Trace | None = None,
    ) -> Iterator[Row]:
        """The hub keeps no roll-ups (`measurements` does not name them, so the report and the
        dashboard ask the readings themselves)."""
        return iter(())

    def rollup_cells(
        self, span: Span, period: Period, fields: list[str], *, trace: Trace | None = None
    ) -> Iterator[list[str]]:
        """No roll-ups on the hub (see `rollups`)."""
        return iter(())

    def rollup_totals(
        self,
        span: Span,
        period: Period,
        selects: list[tuple[Total, str]],
        *,
        per_node: bool = True,
        equals: tuple[str, str] | None = None,
        every: timedelta | None = None,
        trace: Trace | None = None,
    ) -> Iterator[Row]:
        """No roll-ups on the hub, so no totals over them either (the callers read the readings)."""
        return iter(())

    def status_before(self, site: str, at: datetime, *, trace: Trace | None = None) -> dict[str, str]:
        query = sql.SQL(
            "SELECT DISTINCT ON (node) node, state FROM node_status WHERE site = {} AND received <= {}"
            " ORDER BY node, received DESC"
        ).format(sql.Literal(site), sql.Literal(at))
        return {str(r[0]): str(r[1]) for r in self.rows(self._traced(query, trace))}

    def status_changes(
        self, site: str, start: datetime, end: datetime, *, trace: Trace | None = None
    ) -> list[tuple[str, str | None, datetime]]:
        query = sql.SQL(
            "SELECT node, state, received FROM node_status WHERE site = {} AND received > {}"
            " AND received <= {} ORDER BY node, received"
        ).format(sql.Literal(site), sql.Literal(start), sql.Literal(end))
        return [(str(r[0]), r[1], r[2]) for r in self.rows(self._traced(query, trace))]

    def firmware(
        self, site: str, end: datetime, *, trace: Trace | None = None
    ) -> list[tuple[str, str, datetime]]:
        query = sql.SQL(
            "SELECT node, payload->>'version', received FROM node_status WHERE site = {} AND received <= {}"
            " AND coalesce(payload->>'version', '') <> '' ORDER BY node, received"
        ).format(sql.Literal(site), sql.Literal(end))
        return [(str(r[0]), str(r[1]), r[2]) for r in self.rows(self._traced(query, trace))]

    def alert_rows(
        self, site: str, start: datetime, end: datetime, fields: list[str], *, trace: Trace | None = None
    ) -> list[Row]:
        query = sql.SQL(
            "SELECT node, at, payload FROM alert_event WHERE site = {} AND at > {} AND at <= {}"
            " ORDER BY node, payload->>'rule', payload->>'metric', at"
        ).format(sql.Literal(site), sql.Literal(start), sql.Literal(end))
        out = []
        for node, at, doc in self.rows(self._traced(query, trace)):
            row: Row = {
                "time": epoch_ms(at),
                "node": node,
                "rule": doc.get("rule"),
                "metric": doc.get("metric"),
            }
            for f in fields:
                value = doc.get(f)
                if f == "msg_params" and value is not None and not isinstance(value, str):
                    value = json.dumps(value, ensure_ascii=False, sort_keys=True)
                row[f] = value
            out.append(row)
        return out

    def maintenance_rows(
        self,
        site: str | None,
        nodes: list[str],
        start: datetime,
        end: datetime,
        *,
        trace: Trace | None = None,
    ) -> list[Row]:
        """The visits the sites forwarded, as the InfluxQL reader gives them (row-level security
        decides which the role sees: those of a site it may see whole at the visit's time)."""
        query = sql.SQL(
            "SELECT at, site, node, kind, done_by, note, flag_from, flag_to, recorded, entered_by"
            " FROM maintenance_visit WHERE {} ORDER BY at, node, kind"
        ).format(_in_period(start, end, site=site, node=nodes))
        out = []
        for at, s, node, kind, by, note, flag_from, flag_to, recorded, entered_by in self.rows(
            self._traced(query, trace)
        ):
            out.append({
                "time": epoch_ms(at), "site": s, "node": node, "kind": kind, "by": by, "note": note,
                "flag_from": _ts(flag_from), "flag_to": _ts(flag_to), "recorded": _ts(recorded),
                "entered_by": entered_by,
            })  # fmt: skip
        return out

    def observation_rows(
        self,
        site: str | None,
        start: datetime,
        end: datetime,
        *,
        ids: list[str] | None = None,
        trace: Trace | None = None,
    ) -> list[Row]:
        """The accepted observations the sites forwarded (who observed stays at the site: `observer`
        is empty), as the InfluxQL reader gives them; row-level security decides which."""
        query = sql.SQL(
            "SELECT at, id, kind, site, node, text, place, lat, lon, site_received,"
            " photo_received_sha256, photo_sha256, photos_received_sha256, photos_sha256, near_node"
            " FROM observation WHERE {} ORDER BY at, id"
        ).format(_in_period(start, end, site=site, id=ids))
        out = []
        for row in self.rows(self._traced(query, trace)):
            at, oid, kind, s, node, text, place, lat, lon, received, photo_in, photo, many_in, many = row[:14]
            near = row[14]
            out.append({
                "time": epoch_ms(at), "id": oid, "kind": kind, "site": s, "node": node or "",
                "observer": "", "text": text, "place": place, "lat": lat, "lon": lon,
                "received": _ts(received), "photo_received_sha256": photo_in, "photo_sha256": photo,
                # as the InfluxDB point holds them: comma-joined, only for two or more
                "photos_received_sha256": ",".join(many_in) if many_in else None,
                "photos_sha256": ",".join(many) if many else None,
                "near_node": near,
            })  # fmt: skip
        return out

    def decision_rows(
        self,
        start: datetime,
        end: datetime,
        *,
        ids: list[str] | None = None,
        trace: Trace | None = None,
    ) -> list[Row]:
        """The monitors' decisions on the forwarded observations (tags `id`, `decision`)."""
        query = sql.SQL(
            "SELECT at, observation, decision, decided_by, why FROM observation_decision WHERE {}"
            " ORDER BY at, decision"
        ).format(_in_period(start, end, observation=ids))
        return [
            {"time": epoch_ms(at), "id": oid, "decision": d, "by": by, "why": why}
            for at, oid, d, by, why in self.rows(self._traced(query, trace))
        ]


def _in_period(start: datetime, end: datetime, **equal: str | list[str] | None) -> sql.Composable:
    """`at` in (start, end], and each column given a value equal to it (a list: any of them; None
    or empty: not asked), for the field records' tables."""
    cond = [sql.SQL("at > {} AND at <= {}").format(sql.Literal(start), sql.Literal(end))]
    for column, value in equal.items():
        if isinstance(value, list):
            if value:
                cond.append(sql.SQL("{} = ANY ({})").format(sql.Identifier(column), sql.Literal(value)))
        elif value is not None:
            cond.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Literal(value)))
    return sql.SQL(" AND ").join(cond)


def _ts(value: datetime | None) -> str | None:
    return None if value is None else format_ts(value)
