"""The report's aggregates in InfluxQL, and the client the InfluxQL reader shares.

The report prints each query's text for regulators to paste into the `influx` shell, so the text
built here is a contract: it is what tests/gateway/report/test_report.py and docs/regulators.md show.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, Protocol

from gateway.stores.influx_rollup import rollup_rows, rollup_totals
from gateway.stores.influxql import bucket_start, every, ident, string, time_literal, where
from gateway.stores.reader import Aggregate, Fill, Row, Span, Total, Trace
from gateway.stores.rollups import MEASUREMENTS, Period
from gateway.timerange import from_ms


class Client(Protocol):
    def query(self, influxql: str) -> list[dict[str, Any]]: ...

    def stream(self, influxql: str, chunk_size: int = 10_000) -> Iterator[dict[str, Any]]: ...

    def stream_series(
        self, influxql: str, chunk_size: int = 10_000
    ) -> Iterator[tuple[dict[str, str], list[str], list[list[Any]]]]: ...

    def stream_cells(
        self, influxql: str, columns: list[str], chunk_size: int = 10_000
    ) -> Iterator[list[str]]: ...

    def close(self) -> None: ...


class ReportQueries:
    def __init__(self, client: Client, *, owned: bool = True) -> None:
        # `owned=False`: a reader over a store's own connection, which the store closes
        self._db = client
        self._owned = owned

    def _run(self, influxql: str, trace: Trace | None) -> list[Row]:
        if trace is not None:
            trace(influxql)
        return self._db.query(influxql)

    def _stream(self, influxql: str, trace: Trace | None) -> Iterator[Row]:
        if trace is not None:
            trace(influxql)
        return self._db.stream(influxql)

    def close(self) -> None:
        if self._owned:
            self._db.close()

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
        col = ident(column)
        select = ", ".join(f"{'DISTINCT' if f == 'distinct' else f}({col})" for f in functions)
        cond = where(span.site, span.nodes, span.start, span.end)
        if flag is not None:
            cond += f' AND "flags" =~ /(^|,){flag}(,|$)/'
        if gateway_flag is not None:  # what the gateway found on storing it (ts_shared), not signed
            cond += f' AND "gateway_flags" =~ /(^|,){gateway_flag}(,|$)/'
        if signed:
            cond += ' AND "signed" = true'
        if equals is not None:
            cond += f" AND {col} = {string(equals)}"
        group = ""
        if bucket is not None:
            group = f' GROUP BY time({every(bucket)}, 1ms), "node"'
            group += {None: "", "zero": " fill(0)", "none": " fill(none)"}[fill]
        elif per_node:
            group = ' GROUP BY "node"'
        rows = self._stream(f'SELECT {select} FROM "reading" WHERE {cond}{group}', trace)
        if bucket is None:
            return rows
        return ({**r, "start": bucket_start(int(r["time"]))} for r in rows)

    def rollups(
        self,
        span: Span,
        period: Period,
        fields: list[str],
        *,
        equals: tuple[str, str] | None = None,
        trace: Trace | None = None,
    ) -> Iterator[Row]:
        return rollup_rows(
            self._db, span.site, span.nodes, span.start, span.end, period, fields, trace, equals
        )

    def rollup_cells(
        self, span: Span, period: Period, fields: list[str], *, trace: Trace | None = None
    ) -> Iterator[list[str]]:
        select = ", ".join(ident(f) for f in fields)
        cond = where(span.site, span.nodes, span.start, span.end)
        text = f"SELECT {select} FROM {ident(MEASUREMENTS[period])} WHERE {cond}"
        if trace is not None:
            trace(text)
        return self._db.stream_cells(text, fields)

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
        cond = where(span.site, span.nodes, span.start, span.end)
        if equals is not None:
            cond += f" AND {ident(equals[0])} = {string(equals[1])}"
        return rollup_totals(self._db, cond, period, list(selects), per_node, trace, every)

    def status_before(self, site: str, at: datetime, *, trace: Trace | None = None) -> dict[str, str]:
        rows = self._run(
            f'SELECT last("state") FROM "node_status" WHERE "site" = {string(site)} '
            f'AND time <= {time_literal(at)} GROUP BY "node"',
            trace,
        )
        return {str(r["node"]): str(r["last"]) for r in rows if r.get("last") is not None}

    def status_changes(
        self, site: str, start: datetime, end: datetime, *, trace: Trace | None = None
    ) -> list[tuple[str, str | None, datetime]]:
        rows = self._run(
            f'SELECT "state" FROM "node_status" WHERE {where(site, [], start, end)} GROUP BY "node"', trace
        )
        return [(str(r["node"]), r.get("state"), from_ms(int(r["time"]))) for r in rows]

    def firmware(
        self, site: str, end: datetime, *, trace: Trace | None = None
    ) -> list[tuple[str, str, datetime]]:
        rows = self._run(
            f'SELECT "version" FROM "node_status" WHERE "site" = {string(site)} AND '
            f'time <= {time_literal(end)} AND "version" != \'\' GROUP BY "node"',
            trace,
        )
        return [(str(r["node"]), str(r["version"]), from_ms(int(r["time"]))) for r in rows]

    def alert_rows(
        self, site: str, start: datetime, end: datetime, fields: list[str], *, trace: Trace | None = None
    ) -> list[Row]:
        select = ", ".join(ident(f) for f in fields)
        return self._run(
            f'SELECT {select} FROM "alert" WHERE {where(site, [], start, end)} '
            'GROUP BY "node", "rule", "metric"',
            trace,
        )

    def maintenance_rows(
        self,
        site: str | None,
        nodes: list[str],
        start: datetime,
        end: datetime,
        *,
        trace: Trace | None = None,
    ) -> list[Row]:
        return self._run(f'SELECT * FROM "maintenance" WHERE {where(site, nodes, start, end)}', trace)

    def observation_rows(
        self,
        site: str | None,
        start: datetime,
        end: datetime,
        *,
        ids: list[str] | None = None,
        trace: Trace | None = None,
    ) -> list[Row]:
        # an observation given only as a position has no `site` tag, which InfluxQL compares as ''
        parts = [] if site is None else [f'("site" = {string(site)} OR "site" = \'\')']
        parts += [_any_of("id", ids)] if ids else []
        parts.append(where(None, [], start, end))
        return self._run(f'SELECT * FROM "observation" WHERE {" AND ".join(parts)}', trace)

    def decision_rows(
        self,
        start: datetime,
        end: datetime,
        *,
        ids: list[str] | None = None,
        trace: Trace | None = None,
    ) -> list[Row]:
        parts = ([_any_of("id", ids)] if ids else []) + [where(None, [], start, end)]
        return self._run(f'SELECT * FROM "observation_decision" WHERE {" AND ".join(parts)}', trace)


def _any_of(tag: str, values: list[str]) -> str:
    return "(" + " OR ".join(f"{ident(tag)} = {string(v)}" for v in values) + ")"
