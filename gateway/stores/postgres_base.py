"""The hub's read seam, its common part: connections switched to a jurisdiction's role, and a
stored reading turned back into the seam's row (docs/region.md, "What a jurisdiction sees").

A `PostgresReader` reads **as one jurisdiction's role**: every connection it makes runs
`SET ROLE <role>` before its first query and checks `current_user` afterwards, so row-level security
(`hub_may_see`, gateway/stores/postgres_schema.sql) decides which readings, nodes, statuses and
alert events it sees. Nothing here filters by jurisdiction in Python: a bug here can show less, never
more, than the database allows that role. The connection that logs in may be the hub's own role or
any role granted the jurisdiction's; it is never used unswitched.

Rows come back in the shapes the InfluxQL reader gives (gateway/stores/influx_read.py): a reading as
`time` (epoch ms), `site`, `node`, `seq`, `flags`, per metric `<m>`, `<m>_raw`, `<m>_n`, `<m>_cal`,
`period_s`, `signed`, `sig`, `kid`, `received` — rebuilt from the row's `payload`, the reading exactly
as the node signed it, so an export from the hub verifies as one from the site. Buckets and ranges
follow the seam's rule, `start < time <= end`. The report's aggregates are in postgres_report.py,
the rest of the reader in postgres_reader.py.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg import sql

from contract.metrics import Metric
from gateway.stores.base import StoreError
from gateway.stores.reader import (
    AlertEvent,
    AllOf,
    AnyOf,
    Compare,
    Condition,
    Latest,
    Negation,
    Row,
    Span,
)

METRICS: tuple[str, ...] = tuple(m.value for m in Metric)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MS = timedelta(milliseconds=1)
_ROLE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
READING_COLUMNS = "r.site, r.node, r.ts, r.received, r.payload"
Query = sql.SQL | sql.Composed
SHARES_TTL_S = 10.0
"""How long a reader keeps the list of sites it holds a metric-limited or hourly agreement for. The
list only decides which tables a query reads; row-level security decides the rows, so a stale list
can show less (for ten seconds), never more."""

# The parts of a reading a role may see without seeing the whole of it (docs/region.md): of the
# metrics an agreement shares raw, from `reading_part` (one row per reading), their entries as
# signed (value, raw, n, cal) with the reading's seq, flags and period_s, as readings without a
# signature; and the hourly means an agreement shares, from `reading_hourly`, as one reading per node
# and hour stamped at the middle of its hour [h, h + 1 h): so it falls in that hour, and that day,
# whether buckets are taken (b, b + d] (the seam, the report) or [t, t + d) (the dashboard). Each
# carries `share` in its document so it can never pass for a signed reading.
PART_PAYLOAD = (
    "jsonb_build_object('seq', v.seq, 'flags', v.flags, 'period_s', v.period_s, 'share', 'partial',"
    " 'metrics', v.parts)"
)
_PARTIAL = (
    " UNION ALL SELECT v.site, v.node, v.seq, v.ts, v.received, NULL::text, v.metrics, "
    + PART_PAYLOAD
    + " FROM reading_part v WHERE v.site = ANY({})"
)
HOURLY_SELECT = """SELECT h.site, h.node, NULL::bigint AS seq, h.hour + interval '30 minutes' AS ts,
   NULL::timestamptz AS received, NULL::text AS kid, jsonb_object_agg(h.metric, h.total / h.n) AS metrics,
   jsonb_build_object('flags', '[]'::jsonb, 'share', 'hourly', 'metrics',
     jsonb_object_agg(h.metric, jsonb_build_object('value', h.total / h.n, 'n', h.n))) AS payload
   FROM reading_hourly h WHERE h.site = ANY({sites}){extra}
    AND NOT EXISTS (SELECT 1 FROM unnest((SELECT hub_windows(current_user))) w
      WHERE w.site = h.site AND (w.metrics IS NULL OR h.metric = ANY (w.metrics)) AND w.form = 'raw'
        AND h.hour + interval '1 hour' >= w.lo AND h.hour + interval '1 hour' < w.hi
        AND h.hour + interval '1 hour' <= now() - w.lag)
  GROUP BY h.site, h.node, h.hour"""
_HOURLY = " UNION ALL " + HOURLY_SELECT.replace("{extra}", "")
_SHARES = """
SELECT DISTINCT a.form, s FROM agreement a JOIN jurisdiction g ON g.id = a.grantee, unnest(a.sites) s
 WHERE pg_has_role(current_user, g.db_role, 'MEMBER') AND (a.form = 'hourly' OR a.metrics IS NOT NULL)
   AND a.version = (SELECT max(b.version) FROM agreement b WHERE b.name = a.name)
   AND (a.valid_to IS NULL OR a.valid_to > now())
   AND NOT EXISTS (SELECT 1 FROM site o JOIN jurisdiction j ON j.id = o.jurisdiction
                    WHERE o.id = s AND pg_has_role(current_user, j.db_role, 'MEMBER'))"""
SHARE_FLAGS = {"partial": "hub_partial", "hourly": "hub_hourly_mean"}
"""The `gateway_flags` a row of a part of a reading carries in the seam (and so in an export)."""


class HubReadError(StoreError):
    """The hub's database could not be read (down, or the role cannot be taken): a 503, or exit 1."""

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=True)


def epoch_ms(ts: datetime) -> int:
    return (ts - EPOCH) // MS


def from_ms(ms: int) -> datetime:
    return EPOCH + ms * MS


def cell(value: Any) -> str:
    """A value as the database's own text would be: a float in its shortest form, 12.0 as "12"."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def reading_row(
    site: str, node: str, ts: datetime, received: datetime | None, payload: dict[str, Any]
) -> Row:
    """A stored reading in the seam's shape, from the document the node signed."""
    row: Row = {
        "time": epoch_ms(ts),
        "site": site,
        "node": node,
        "seq": payload.get("seq"),
        "flags": ",".join(payload.get("flags") or []),
        "period_s": payload.get("period_s"),
    }
    for name, entry in (payload.get("metrics") or {}).items():
        if entry.get("value") is not None:
            row[name] = float(entry["value"])
        if entry.get("raw") is not None:
            row[f"{name}_raw"] = float(entry["raw"])
        row[f"{name}_n"] = entry.get("n")
        if entry.get("cal") is not None:
            row[f"{name}_cal"] = entry["cal"]
    if payload.get("sig") is not None:
        row.update(signed=True, sig=payload["sig"], kid=payload.get("kid"))
    share = payload.get("share")
    if share is not None:  # a part of a reading: never signed, and says so
        row.update(signed=False, share=share, gateway_flags=SHARE_FLAGS[str(share)])
    if received is not None:
        row["received"] = epoch_ms(received)
    return row


def metric_expr(column: str) -> Query:
    """The SQL of one of a reading's fields, as the seam names it (`pm2_5`, `pm2_5_n`, `seq`, ...)."""
    if column == "seq":
        return sql.SQL("r.seq")
    if column == "kid":
        return sql.SQL("r.kid")
    if column == "period_s":
        return sql.SQL("(r.payload->>'period_s')::int")
    if column == "flags":
        return sql.SQL("array_to_string(ARRAY(SELECT jsonb_array_elements_text(r.payload->'flags')), ',')")
    for m in METRICS:
        entry = sql.SQL("r.payload->'metrics'->{}").format(sql.Literal(m))
        if column == m:
            return sql.SQL("({}->>'value')::float8").format(entry)
        if column == f"{m}_raw":
            return sql.SQL("({}->>'raw')::float8").format(entry)
        if column == f"{m}_n":
            return sql.SQL("({}->>'n')::int").format(entry)
        if column == f"{m}_cal":
            return sql.SQL("({}->>'cal')").format(entry)
    raise ValueError(f"no field {column!r} in the hub's readings")


def span_where(span: Span) -> Query:
    parts = [sql.SQL("r.site = {}").format(sql.Literal(span.site))]
    if span.nodes:
        parts.append(sql.SQL("r.node = ANY({})").format(sql.Literal(list(span.nodes))))
    parts.append(sql.SQL("r.ts > {} AND r.ts <= {}").format(sql.Literal(span.start), sql.Literal(span.end)))
    return sql.SQL(" AND ").join(parts)


class Connections:
    """A few connections, each switched to the role before it is handed out. psycopg's
    connections serialise their own use, but a streamed result holds its connection until the
    caller stops reading, so concurrent requests (the dashboard's threads) each take their own."""

    def __init__(self, dsn: str, role: str, *, keep: int = 4) -> None:
        if not _ROLE.match(role):
            raise HubReadError(f"{role!r} is not a jurisdiction role name")
        self.dsn, self.role, self._keep = dsn, role, keep
        self._idle: list[psycopg.Connection[Any]] = []
        self._lock = threading.Lock()

    def _open(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self.dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise HubReadError(f"cannot connect to the hub database: {exc}") from exc
        try:
            conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(self.role)))
            conn.execute("SET default_transaction_read_only = on")
            # JIT compiles a query the planner thinks big (a share's readings rebuilt per row) in
            # about a second, far more than these queries take to run (bench/hub_read.py)
            conn.execute("SET jit = off")
            row = conn.execute("SELECT current_user").fetchone()
        except psycopg.Error as exc:
            conn.close()
            raise HubReadError(f"cannot read as {self.role}: {exc}") from exc
        if row is None or row[0] != self.role:  # fail closed: never read as the login role
            conn.close()
            raise HubReadError(f"the connection is {row!r}, not {self.role}")
        return conn

    @contextmanager
    def take(self) -> Iterator[psycopg.Connection[Any]]:
        with self._lock:
            conn = self._idle.pop() if self._idle else None
        if conn is None or conn.closed:
            conn = self._open()
        try:
            yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            conn.close()
            raise HubReadError(f"the hub database: {exc}") from exc
        except BaseException:
            conn.close()  # mid-stream or mid-transaction: do not hand it to the next caller
            raise
        with self._lock:
            if len(self._idle) < self._keep and not conn.closed:
                self._idle.append(conn)
                conn = None
        if conn is not None:
            conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


class PostgresBase:
    def __init__(self, dsn: str, role: str, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._conns = Connections(dsn, role)
        self._monotonic = monotonic
        self._shares: tuple[float, tuple[list[str], list[str]]] | None = None

    def shares(self) -> tuple[list[str], list[str]]:
        """The sites an agreement shares only part of with the role: (some metrics raw, hourly
        means), its own sites left out; asked again after SHARES_TTL_S."""
        now = self._monotonic()
        if self._shares is not None and now - self._shares[0] < SHARES_TTL_S:
            return self._shares[1]
        partial: list[str] = []
        hourly: list[str] = []
        for form, site in self.rows(sql.SQL(_SHARES)):
            (hourly if form == "hourly" else partial).append(str(site))
        found = (sorted(partial), sorted(hourly))
        self._shares = (now, found)
        return found

    def source(self) -> Query:
        """What `r` is in every query: the readings the role may see whole (`reading`, row-level
        security deciding), and, only for the sites an agreement shares part of with it, the values
        and hourly means the role may see of readings it may not see whole. For a role with no such
        agreement it is `reading` itself, so the owner's queries are as they were."""
        partial, hourly = self.shares()
        if not partial and not hourly:
            return sql.SQL("reading")
        parts: list[Query] = [
            sql.SQL("(SELECT site, node, seq, ts, received, kid, metrics, payload FROM reading")
        ]
        if partial:
            parts.append(sql.SQL(_PARTIAL).format(sql.Literal(partial)))
        if hourly:
            parts.append(sql.SQL(_HOURLY).format(sites=sql.Literal(hourly)))
        parts.append(sql.SQL(")"))
        return sql.Composed(parts)

    @property
    def role(self) -> str:
        return self._conns.role

    def close(self) -> None:
        self._conns.close()

    def text(self, query: Query) -> str:
        """The query as it runs, for the report's "the query behind this table" (psql, as the role)."""
        with self._conns.take() as conn:
            return query.as_string(conn)

    def rows(self, query: Query, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._conns.take() as conn:
            rows: list[tuple[Any, ...]] = conn.execute(query, params).fetchall()
            return rows

    def stream(self, query: Query, params: list[Any] | None = None) -> Iterator[tuple[Any, ...]]:
        """Rows through a server-side cursor: a year of readings is never in memory at once."""
        with self._conns.take() as conn, conn.transaction(), conn.cursor(name="hub_read") as cur:
            cur.itersize = 5000
            cur.execute(query, params)
            yield from cur

    def readings_query(self, where: Query, order: str = "r.ts, r.node, r.seq") -> Query:
        return sql.SQL("SELECT {} FROM {} r WHERE {} ORDER BY {}").format(
            sql.SQL(READING_COLUMNS), self.source(), where, sql.SQL(order)
        )

    def stream_readings(self, where: Query, order: str = "r.ts, r.node, r.seq") -> Iterator[Row]:
        for site, node, ts, received, payload in self.stream(self.readings_query(where, order)):
            yield reading_row(site, node, ts, received, payload)


def condition_sql(condition: Condition, value: Query) -> Query:
    """A SensorThings filter in SQL: a null value matches no value comparison, NOT included."""
    if isinstance(condition, Compare):
        op = sql.SQL({"eq": "=", "ne": "<>", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}[condition.op])
        subject = sql.SQL("r.ts") if condition.subject == "time" else value
        test = sql.SQL("{} {} {}").format(subject, op, sql.Literal(condition.operand))
        return sql.SQL("coalesce({}, false)").format(test)
    if isinstance(condition, Negation):
        return sql.SQL("NOT {}").format(condition_sql(condition.part, value))
    assert isinstance(condition, AllOf | AnyOf)
    joiner = sql.SQL(" OR " if isinstance(condition, AnyOf) else " AND ")
    return sql.SQL("({})").format(joiner.join(condition_sql(p, value) for p in condition.parts))


def alert_of(site: str, node: str, at: datetime, doc: dict[str, Any]) -> AlertEvent:
    known = {"schema", "id", "state", "site", "node", "rule", "type", "metric", "severity", "ts", "started",
             "ended", "value", "limit", "average", "peak", "late", "acked_by", "category", "message",
             "msg_id", "msg_params"}  # fmt: skip
    return AlertEvent(
        time=at,
        site=site,
        node=node,
        rule=str(doc.get("rule") or ""),
        metric=str(doc.get("metric") or ""),
        state=str(doc.get("state") or ""),
        severity=None if doc.get("severity") is None else str(doc["severity"]),
        value=_float(doc.get("value")),
        limit=_float(doc.get("limit")),
        average=None if doc.get("average") is None else str(doc["average"]),
        late=doc.get("late") is True,
        message=None if doc.get("message") is None else str(doc["message"]),
        msg_id=None if not doc.get("msg_id") else str(doc["msg_id"]),
        msg_params=_params(doc.get("msg_params")),
        tags={k: str(v) for k, v in doc.items() if k not in known and isinstance(v, str)},
        peak=_float(doc.get("peak")),
        started=_iso(doc.get("started")),
        ended=_iso(doc.get("ended")),
    )


def _params(value: Any) -> str | None:
    if not value:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _iso(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def latest_of(row: Row) -> Latest:
    values = {m: float(row[m]) for m in METRICS if isinstance(row.get(m), int | float)}
    flags = [f for f in str(row.get("flags") or "").split(",") if f]
    seq = row.get("seq")
    return Latest(str(row["site"]), str(row["node"]), from_ms(int(row["time"])),
                  None if seq is None else int(seq), values, flags)  # fmt: skip
