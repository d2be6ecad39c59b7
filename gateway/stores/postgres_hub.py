"""The regional hub's store: PostgreSQL with PostGIS (docs/region.md). Its write side and its
registration; the read side, as a jurisdiction's role, is postgres_reader.py, and the API tokens
and the public agreements postgres_access.py. The hub's SQL lives in gateway/stores/ alone.

Readings are partitioned by month; a partition is created the first time a reading of its month
arrives (a site back after a year offline, or a backfill, brings old months). Each part of a batch
(readings, statuses, alert events, warnings) is one idempotent transaction; the hub acknowledges the
batch to the site only after the last `commit`, so an ack always means stored.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Any, ParamSpec, TypeVar

import psycopg
from psycopg import sql

from contract.configfile import ConfigError
from contract.hub import ForwardedObservation, ForwardedStatus, ForwardedVisit
from contract.signing import canonical_doc
from contract.wire import ID_PATTERN, ReadingPayload, format_ts

P = ParamSpec("P")
R = TypeVar("R")
_ROLE = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_ID = re.compile(ID_PATTERN)
FORMS = ("raw", "hourly")
"""What an agreement shares of its metrics: the readings themselves, or only hourly aggregates."""


class HubStoreError(OSError):
    """The hub's database could not be reached or failed; the caller reconnects and retries."""


class HubInputError(ConfigError):
    """The hub's database refused what the operator asked (a site registered twice, a jurisdiction
    that does not exist): the CLI exits 2 with the database's reason."""


@dataclass(frozen=True, slots=True)
class Verdicted:
    """A reading the hub checked, with how (`verified` or `unsigned`)."""

    reading: ReadingPayload
    verdict: str
    site_received: datetime | None = None  # when the site stored it, as the site says
    period_known: bool = True  # False: stored at the site without `period_s`; kept without it here
    # The reading as signed (canonical JSON with `sig`), when the caller built it to verify the
    # signature: stored as it is instead of being built again (`_payload`).
    signed: bytes | None = None


@dataclass(frozen=True, slots=True)
class StoredKey:
    kid: str
    site: str
    node: str
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WarningDue:
    warning: int
    alert: dict[str, Any]
    neighbour: str
    action: str  # warning | escalated | end
    rank: int
    contact: str
    channel: dict[str, Any]
    ended: datetime | None = None  # when the site's all-clear arrived, if it has


@dataclass(frozen=True, slots=True)
class BatchResult:
    stored: int
    duplicate: int


@dataclass(frozen=True, slots=True)
class FieldResult:
    """What a batch's field records did: rows stored, rows already there the same, and those
    refused because a record of the same name differs (detail, the record as it came)."""

    stored: int
    duplicate: int
    conflicts: list[tuple[str, bytes]]


_VISIT_COLUMNS = "done_by, note, flag_from, flag_to, recorded, entered_by"
_OBSERVATION_COLUMNS = (
    "kind, text, at, node, place, lat, lon, site_received, photo_received_sha256, photo_sha256,"
    " photos_received_sha256, photos_sha256"
)


def _visit_values(v: ForwardedVisit) -> tuple[Any, ...]:
    return (v.by, v.note, v.flag_from, v.flag_to, v.recorded, v.entered_by)


def _observation_values(o: ForwardedObservation) -> tuple[Any, ...]:
    return (o.kind, o.text, o.at, o.node, o.place, o.lat, o.lon, o.received, o.photo_received_sha256,
            o.photo_sha256, o.photos_received_sha256, o.photos_sha256)  # fmt: skip


def _month(ts: datetime) -> tuple[datetime, datetime]:
    start = datetime(ts.year, ts.month, 1, tzinfo=UTC)
    end = datetime(ts.year + (ts.month == 12), ts.month % 12 + 1, 1, tzinfo=UTC)
    return start, end


def _guarded(method: Callable[P, R]) -> Callable[P, R]:
    """A lost or refusing database becomes HubStoreError: the caller reconnects and retries."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise HubStoreError(f"the hub database: {exc}") from exc
        except psycopg.IntegrityError as exc:
            raise HubInputError(f"the hub database refused it: {exc.diag.message_primary or exc}") from exc

    return call


class HubStore:
    def __init__(self, dsn: str) -> None:
        try:
            self._conn = psycopg.connect(dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise HubStoreError(f"cannot connect to the hub database: {exc}") from exc
        self._partitions: set[str] = set()
        self._nodes: set[tuple[str, str]] = set()  # (site, node) rows known to exist
        self._staging = False

    @_guarded
    def close(self) -> None:
        self._conn.close()

    @_guarded
    def prepare(self) -> None:
        """Create or update the schema (every statement may run again): the tables and policies,
        then the read side's tokens and index (postgres_access.sql)."""
        with self._conn.transaction():
            for name in ("postgres_schema.sql", "postgres_access.sql"):
                text = resources.files("gateway.stores").joinpath(name).read_text()
                self._conn.execute(text.encode())

    # --- registration (the hub's operator, `minewatch-gateway hub ...`) ---

    @_guarded
    def add_jurisdiction(self, jid: str, name: str, db_role: str) -> None:
        """A jurisdiction and its database role (created NOLOGIN if missing; the operator grants it
        to the people's or the API's login roles, or gives it a password and LOGIN)."""
        if not _ID.match(jid) or not _ROLE.match(db_role):
            raise HubStoreError(f"jurisdiction {jid!r} or role {db_role!r} is not a valid name")
        with self._conn.transaction():
            exists = self._conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [db_role]).fetchone()
            if exists is None:
                self._conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(db_role)))
            self._conn.execute(sql.SQL("GRANT hub_reader TO {}").format(sql.Identifier(db_role)))
            self._conn.execute(
                "INSERT INTO jurisdiction (id, name, db_role) VALUES (%s, %s, %s)"
                " ON CONFLICT (id) DO UPDATE SET name = excluded.name",
                [jid, name, db_role],
            )

    @_guarded
    def add_site(self, site: str, jurisdiction: str, identity_key: str, name: str = "") -> None:
        with self._conn.transaction():
            self._conn.execute(
                "INSERT INTO site (id, jurisdiction, identity_key, name) VALUES (%s, %s, %s, %s)",
                [site, jurisdiction, identity_key, name],
            )

    @_guarded
    def add_agreement(
        self,
        *,
        name: str,
        grantor: str,
        grantee: str,
        sites: Sequence[str],
        licence: str,
        valid_from: datetime,
        valid_to: datetime | None,
        delay_s: int,
        recorded_by: str,
        metrics: Sequence[str] | None = None,
        form: str = "raw",
    ) -> int:
        """Record a new version of an agreement (the latest version of a name is the one in force).

        `metrics` None shares every metric; `form` is `raw` (the readings) or `hourly` (only the
        hourly aggregates). The database enforces both (row-level security, docs/region.md)."""
        if form not in FORMS:
            raise HubInputError(f"form {form!r}: one of {', '.join(FORMS)}")
        with self._conn.transaction():
            row = self._conn.execute(
                "INSERT INTO agreement (name, version, grantor, grantee, sites, delay, licence,"
                " valid_from, valid_to, recorded_by, metrics, form)"
                " SELECT %s, coalesce(max(version), 0) + 1, %s, %s, %s, make_interval(secs => %s),"
                " %s, %s, %s, %s, %s, %s FROM agreement WHERE name = %s RETURNING version",
                [name, grantor, grantee, list(sites), delay_s, licence, valid_from, valid_to,
                 recorded_by, None if metrics is None else list(metrics), form, name],
            ).fetchone()  # fmt: skip
        assert row is not None
        return int(row[0])

    @_guarded
    def site_identity(self, site: str) -> str | None:
        row = self._conn.execute("SELECT identity_key FROM site WHERE id = %s", [site]).fetchone()
        return None if row is None else str(row[0])

    # --- what a batch brings ---

    @_guarded
    def keys(self, site: str) -> dict[str, StoredKey]:
        rows = self._conn.execute(
            "SELECT kid, site, node, record FROM node_key WHERE site = %s", [site]
        ).fetchall()
        return {r[0]: StoredKey(r[0], r[1], r[2], r[3]) for r in rows}

    @_guarded
    def put_key(self, record: dict[str, Any], vouch: str) -> None:
        """Store a vouched key, or its new status (retired, revoked). A kid names one public key for
        good: the same kid with another key is refused by the caller before it gets here."""
        with self._conn.transaction():
            self._conn.execute(
                "INSERT INTO node_key (kid, site, node, public_key, status, since, record, vouch)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (kid) DO UPDATE SET status = excluded.status, since = excluded.since,"
                " record = excluded.record, vouch = excluded.vouch, received = now()",
                [record["kid"], record["site"], record["node"], record["public_key"],
                 record.get("status", "active"), record.get("since"), json.dumps(record), vouch],
            )  # fmt: skip

    @_guarded
    def write_readings(self, readings: Sequence[Verdicted]) -> BatchResult:
        """Store readings once each, in one transaction: the rows go by `COPY` into a temporary
        table of this connection, then into `reading` with one `INSERT ... SELECT ... ON CONFLICT
        DO NOTHING`, which also grows the hourly aggregates from the rows it inserted."""
        if not readings:
            return BatchResult(0, 0)
        if not self._staging:
            # ON COMMIT DELETE ROWS: the table is empty at the start of every transaction, also
            # after a rollback; one per connection, so several hub processes never share it.
            self._conn.execute(
                "CREATE TEMPORARY TABLE IF NOT EXISTS reading_in (site text, node text, seq bigint,"
                " ts timestamptz, verdict text, kid text, metrics text, payload text,"
                " site_received timestamptz) ON COMMIT DELETE ROWS"
            )
            self._staging = True
        nodes = {(r.reading.site, r.reading.node) for r in readings} - self._nodes
        with self._conn.transaction():
            self._ensure_partitions(r.reading.ts for r in readings)
            with self._conn.cursor() as cur:
                with cur.copy("COPY reading_in FROM STDIN") as copy:
                    for r in readings:
                        reading = r.reading
                        copy.write_row((reading.site, reading.node, reading.seq, reading.ts, r.verdict,
                                        reading.kid, _values_json(reading), _payload_json(r),
                                        r.site_received))  # fmt: skip
                if nodes:
                    cur.execute(
                        "INSERT INTO node (site, id) SELECT DISTINCT site, node FROM reading_in"
                        " ORDER BY site, node ON CONFLICT DO NOTHING"
                    )
                # The hourly aggregates grow from the rows this statement inserted, in its
                # transaction: a redelivered reading inserts nothing and so adds nothing to them.
                # Both inserts go in key order, so that two hub processes writing overlapping
                # batches (a shared subscription, docs/operations.md) take their row locks in the
                # same order and cannot deadlock.
                row = cur.execute(
                    "WITH ins AS (INSERT INTO reading (site, node, seq, ts, verdict, kid, metrics, payload,"
                    " site_received)"
                    " SELECT site, node, seq, ts, verdict, kid, metrics::jsonb, payload::jsonb, site_received"
                    " FROM reading_in ORDER BY site, node, seq, ts"
                    " ON CONFLICT DO NOTHING"
                    " RETURNING site, node, ts, metrics),"
                    " agg AS (INSERT INTO reading_hourly (site, node, metric, hour, n, total, min, max)"
                    " SELECT ins.site, ins.node, m.key, date_trunc('hour', ins.ts), count(*),"
                    " sum((m.value #>> '{}')::float8), min((m.value #>> '{}')::float8),"
                    " max((m.value #>> '{}')::float8)"
                    " FROM ins CROSS JOIN LATERAL jsonb_each(ins.metrics) m"
                    " WHERE jsonb_typeof(m.value) = 'number' GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"
                    " ON CONFLICT (site, node, metric, hour) DO UPDATE SET n = reading_hourly.n + excluded.n,"
                    " total = reading_hourly.total + excluded.total,"
                    " min = least(reading_hourly.min, excluded.min),"
                    " max = greatest(reading_hourly.max, excluded.max))"
                    " SELECT count(*) FROM ins",
                ).fetchone()
            stored = int(row[0]) if row else 0
        self._nodes |= nodes  # only once committed: a rolled-back node row is made again
        return BatchResult(stored, len(readings) - stored)

    @_guarded
    def recent_values(
        self, since: datetime, metrics: Sequence[str]
    ) -> list[tuple[str, str, datetime, dict[str, float | None]]]:
        """The values of `metrics` stored since `since`, oldest first: what the hub's rules reload."""
        rows = self._conn.execute(
            "SELECT site, node, ts, metrics FROM reading WHERE ts >= %s AND metrics ?| %s ORDER BY ts",
            [since, list(metrics)],
        ).fetchall()
        return [(r[0], r[1], r[2], {m: r[3][m] for m in metrics if m in r[3]}) for r in rows]

    @_guarded
    def write_statuses(self, site: str, statuses: Sequence[ForwardedStatus]) -> int:
        """Store status messages once each; a status with a position moves its node there."""
        if not statuses:
            return 0
        with self._conn.transaction():
            self._conn.execute(
                "INSERT INTO node (site, id) SELECT DISTINCT %s, n FROM unnest(%s::text[]) AS t(n)"
                " ON CONFLICT DO NOTHING",
                [site, [s.node for s in statuses]],
            )
            cur = self._conn.execute(
                "INSERT INTO node_status (site, node, received, state, payload)"
                " SELECT %s, * FROM unnest(%s::text[], %s::timestamptz[], %s::text[], %s::jsonb[])"
                " ON CONFLICT DO NOTHING",
                [site, [s.node for s in statuses], [s.received for s in statuses],
                 [s.status.state for s in statuses], [s.status.model_dump_json() for s in statuses]],
            )  # fmt: skip
            for s in statuses:
                if s.status.lat is not None and s.status.lon is not None:
                    self._conn.execute(
                        "UPDATE node SET location = ST_SetSRID(ST_MakePoint(%s, %s), 4326)::geography"
                        " WHERE site = %s AND id = %s",
                        [s.status.lon, s.status.lat, site, s.node],
                    )
        return cur.rowcount

    @_guarded
    def write_alerts(self, site: str, events: Sequence[dict[str, Any]]) -> int:
        if not events:
            return 0
        with self._conn.transaction():
            cur = self._conn.execute(
                "INSERT INTO alert_event (site, node, id, state, at, payload)"
                " SELECT %s, * FROM unnest(%s::text[], %s::text[], %s::text[], %s::timestamptz[],"
                " %s::jsonb[])"
                " ON CONFLICT DO NOTHING",
                [site, [e["node"] for e in events], [e["id"] for e in events], [e["state"] for e in events],
                 [e["ts"] for e in events], [json.dumps(e) for e in events]],
            )  # fmt: skip
        return cur.rowcount

    @_guarded
    def write_field(
        self, site: str, visits: Sequence[ForwardedVisit], observations: Sequence[ForwardedObservation]
    ) -> FieldResult:
        """Store field records once each, in one transaction, under the names the site gives them
        (a visit: node, kind, time; an observation: its id; a decision: its observation, decision
        and time). What is there already is compared, never replaced: the same is a duplicate, a
        difference a conflict (the record is not stored; the caller keeps it in `reject`). An
        observation's `near_node` is compared only when it comes, and fills a row without one: an
        earlier site sends none, and an upgraded one resends what it forwarded before, with it."""
        stored = duplicate = 0
        conflicts: list[tuple[str, bytes]] = []
        if not visits and not observations:
            return FieldResult(0, 0, conflicts)
        with self._conn.transaction():
            for v in visits:
                key = (site, v.node, v.kind, v.at)
                new = self._conn.execute(
                    f"INSERT INTO maintenance_visit (site, node, kind, at, {_VISIT_COLUMNS})"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                    [*key, *_visit_values(v)],
                ).fetchone()
                if new is not None:
                    stored += 1
                    continue
                there = self._conn.execute(
                    f"SELECT {_VISIT_COLUMNS} FROM maintenance_visit"
                    " WHERE site = %s AND node = %s AND kind = %s AND at = %s",
                    list(key),
                ).fetchone()
                if there is not None and tuple(there) == _visit_values(v):
                    duplicate += 1
                else:
                    detail = f"visit {v.kind} at {v.node} {format_ts(v.at)} differs from the one stored"
                    conflicts.append((detail, v.model_dump_json().encode()))
            for o in observations:
                new = self._conn.execute(
                    f"INSERT INTO observation (site, id, {_OBSERVATION_COLUMNS}, near_node)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT DO NOTHING RETURNING 1",
                    [site, o.id, *_observation_values(o), o.near_node],
                ).fetchone()
                if new is not None:
                    stored += 1
                else:
                    there = self._conn.execute(
                        f"SELECT {_OBSERVATION_COLUMNS}, near_node FROM observation"
                        " WHERE site = %s AND id = %s",
                        [site, o.id],
                    ).fetchone()
                    if (
                        there is None
                        or tuple(there[:-1]) != _observation_values(o)
                        or (o.near_node is not None and there[-1] not in (None, o.near_node))
                    ):
                        conflicts.append((f"observation {o.id} differs from the one stored",
                                          o.model_dump_json().encode()))  # fmt: skip
                        continue  # nor its decisions: they are on another observation
                    if o.near_node is not None and there[-1] is None:
                        # forwarded before the site sent `near_node` (or before this hub kept it):
                        # the site's upgrade resends it with the node, which completes the row
                        self._conn.execute(
                            "UPDATE observation SET near_node = %s WHERE site = %s AND id = %s",
                            [o.near_node, site, o.id],
                        )
                    duplicate += 1
                for d in o.decisions:
                    key2 = (site, o.id, d.decision, d.at)
                    new = self._conn.execute(
                        "INSERT INTO observation_decision (site, observation, decision, at, decided_by, why)"
                        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING 1",
                        [*key2, d.by, d.why],
                    ).fetchone()
                    if new is not None:
                        stored += 1
                        continue
                    there = self._conn.execute(
                        "SELECT decided_by, why FROM observation_decision"
                        " WHERE site = %s AND observation = %s AND decision = %s AND at = %s",
                        list(key2),
                    ).fetchone()
                    if there is not None and tuple(there) == (d.by, d.why):
                        duplicate += 1
                    else:
                        detail = f"decision {d.decision} on {o.id} at {format_ts(d.at)} differs"
                        conflicts.append((detail, d.model_dump_json().encode()))
        return FieldResult(stored, duplicate, conflicts)

    # --- warnings to neighbours ---

    @_guarded
    def add_contact(self, jurisdiction: str, rank: int, name: str, channel: dict[str, Any]) -> None:
        with self._conn.transaction():
            self._conn.execute(
                "INSERT INTO contact (jurisdiction, rank, name, channel) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (jurisdiction, rank)"
                " DO UPDATE SET name = excluded.name, channel = excluded.channel",
                [jurisdiction, rank, name, json.dumps(channel)],
            )

    @_guarded
    def add_warning_rule(self, site: str, rule: str, neighbour: str, escalate_after_s: int) -> None:
        with self._conn.transaction():
            self._conn.execute(
                "INSERT INTO warning_rule (site, rule, neighbour, escalate_after)"
                " VALUES (%s, %s, %s, make_interval(secs => %s)) ON CONFLICT (site, rule, neighbour)"
                " DO UPDATE SET escalate_after = excluded.escalate_after",
                [site, rule, neighbour, escalate_after_s],
            )

    @_guarded
    def open_warnings(self, site: str, events: Sequence[dict[str, Any]], now: datetime) -> int:
        """A raised alert of a rule that concerns a neighbour opens a warning there (once); the
        site's all-clear marks it ended, so its end is told."""
        opened = 0
        if not events:
            return opened
        with self._conn.transaction():
            for e in events:
                if e.get("state") == "raised":
                    cur = self._conn.execute(
                        "INSERT INTO warning (alert_id, site, node, rule, neighbour, alert, raised)"
                        " SELECT %s, %s, %s, %s, r.neighbour, %s, %s FROM warning_rule r"
                        " WHERE r.site = %s AND r.rule = %s ON CONFLICT (alert_id, neighbour) DO NOTHING",
                        [e["id"], site, e["node"], e["rule"], json.dumps(e), now, site, e["rule"]],
                    )
                    opened += cur.rowcount
                elif e.get("state") == "cleared":
                    self._conn.execute(
                        "UPDATE warning SET ended = %s WHERE alert_id = %s AND ended IS NULL", [now, e["id"]]
                    )
        return opened

    @_guarded
    def warnings_due(self, now: datetime) -> list[WarningDue]:
        """What the warning desk must send now: a new warning to the first contact (also one whose
        alert ended before it was first sent: the neighbour is still told, then told its end); an
        unconfirmed one, past its rule's escalation time, to the next contact; an ended one's end to
        everyone warned."""
        rows = self._conn.execute(
            """
            SELECT w.id, w.alert, w.neighbour, 'warning', c.rank, c.name, c.channel, w.ended
              FROM warning w JOIN contact c ON c.jurisdiction = w.neighbour AND c.rank =
                   (SELECT min(rank) FROM contact WHERE jurisdiction = w.neighbour)
             WHERE w.contact_rank = 0
            UNION ALL
            SELECT w.id, w.alert, w.neighbour, 'escalated', c.rank, c.name, c.channel, w.ended
              FROM warning w JOIN warning_rule r
                   ON (r.site, r.rule, r.neighbour) = (w.site, w.rule, w.neighbour)
              JOIN contact c ON c.jurisdiction = w.neighbour AND c.rank =
                   (SELECT min(rank) FROM contact WHERE jurisdiction = w.neighbour AND rank > w.contact_rank)
             WHERE w.contact_rank > 0 AND w.confirmed IS NULL AND w.ended IS NULL
               AND w.last_sent + r.escalate_after <= %s
            UNION ALL
            SELECT w.id, w.alert, w.neighbour, 'end', c.rank, c.name, c.channel, w.ended
              FROM warning w JOIN contact c ON c.jurisdiction = w.neighbour AND c.rank <= w.contact_rank
             WHERE w.ended IS NOT NULL AND w.end_sent IS NULL
             ORDER BY 1, 5
            """,
            [now],
        ).fetchall()
        return [WarningDue(*r) for r in rows]

    @_guarded
    def warning_sent(self, due: WarningDue, now: datetime, *, last_of_end: bool) -> None:
        with self._conn.transaction():
            if due.action == "end":
                if last_of_end:
                    self._conn.execute("UPDATE warning SET end_sent = %s WHERE id = %s", [now, due.warning])
            else:
                self._conn.execute(
                    "UPDATE warning SET contact_rank = %s, last_sent = %s WHERE id = %s",
                    [due.rank, now, due.warning],
                )
            late = due.ended if due.action == "warning" else None  # its alert ended before it was sent
            detail = "" if late is None else f"already ended at {format_ts(late.astimezone(UTC))}"
            self._log(due.warning, now, due.action, due.contact, None, detail)

    @_guarded
    def warning_failed(self, due: WarningDue, now: datetime, detail: str) -> None:
        with self._conn.transaction():
            self._log(due.warning, now, "failed", due.contact, None, f"{due.action}: {detail}"[:500])

    @_guarded
    def confirm_warning(self, warning: int, by: str, now: datetime) -> bool:
        """The neighbour confirms receipt: escalation stops. False when there is no such open warning."""
        with self._conn.transaction():
            cur = self._conn.execute(
                "UPDATE warning SET confirmed = %s, confirmed_by = %s WHERE id = %s AND confirmed IS NULL",
                [now, by, warning],
            )
            if cur.rowcount:
                self._log(warning, now, "confirmed", None, by, "")
        return cur.rowcount == 1

    @_guarded
    def warning_log(self, warning: int) -> list[tuple[datetime, str, str | None, str | None, str]]:
        rows = self._conn.execute(
            "SELECT at, what, contact, who, detail FROM warning_log WHERE warning = %s ORDER BY at, what",
            [warning],
        ).fetchall()
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    @_guarded
    def warnings(self) -> list[dict[str, Any]]:
        rows = self._conn.execute(
            "SELECT id, alert_id, neighbour, raised, contact_rank, confirmed, confirmed_by, ended, end_sent"
            " FROM warning ORDER BY id"
        ).fetchall()
        keys = ("id", "alert_id", "neighbour", "raised", "contact_rank", "confirmed", "confirmed_by", "ended",
                "end_sent")  # fmt: skip
        return [dict(zip(keys, r, strict=True)) for r in rows]

    def _log(
        self, warning: int, at: datetime, what: str, contact: str | None, who: str | None, detail: str
    ) -> None:
        self._conn.execute(
            "INSERT INTO warning_log (warning, at, what, contact, who, detail)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [warning, at, what, contact, who, detail],
        )

    @_guarded
    def reject(self, topic_site: str | None, reason: str, detail: str, payload: bytes) -> None:
        """Keep refused input for review; counted by reason (`rejects`)."""
        with self._conn.transaction():
            self._conn.execute(
                "INSERT INTO reject (topic_site, reason, detail, payload) VALUES (%s, %s, %s, %s)",
                [topic_site, reason, detail[:2000], payload],
            )

    @_guarded
    def rejects(self) -> dict[str, int]:
        rows = self._conn.execute("SELECT reason, count(*) FROM reject GROUP BY reason").fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    @_guarded
    def count(self, site: str | None = None) -> int:
        query = "SELECT count(*) FROM reading" + (" WHERE site = %s" if site else "")
        row = self._conn.execute(query, [site] if site else []).fetchone()
        return int(row[0]) if row else 0

    def _ensure_partitions(self, times: Iterable[datetime]) -> None:
        for start, end in {_month(ts) for ts in times}:
            name = f"reading_{start:%Y_%m}"
            if name in self._partitions:
                continue
            # CREATE ... IF NOT EXISTS is not safe against another connection making the same
            # table at the same moment (two hub processes, the first reading of a month): it
            # fails with "already exists". The lock makes the second wait for the first's commit,
            # and then see its table.
            self._conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"minewatch partition {name}"])
            self._conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS {} PARTITION OF reading FOR VALUES FROM ({}) TO ({})"
                ).format(sql.Identifier(name), sql.Literal(start), sql.Literal(end))
            )
            self._partitions.add(name)


def _values_json(reading: ReadingPayload) -> str:
    """`_values` as JSON text, written out directly (a value is a finite float or None)."""
    return (
        "{"
        + ", ".join(
            f'"{m.value}": {"null" if mv.value is None else repr(float(mv.value))}'
            for m, mv in reading.metrics.items()
        )
        + "}"
    )


def _payload_json(verdicted: Verdicted) -> str:
    """`_payload` as JSON text: the signed bytes the ingest already verified, when it has them."""
    if verdicted.signed is not None:
        return verdicted.signed.decode("utf-8")
    return json.dumps(_payload(verdicted.reading, verdicted.period_known))


def _values(reading: ReadingPayload) -> dict[str, float | None]:
    return {m.value: mv.value for m, mv in reading.metrics.items()}


def _payload(reading: ReadingPayload, period_known: bool = True) -> dict[str, Any]:
    """The reading as signed: the canonical document plus its signature, so a row alone verifies.
    An unsigned reading whose period the site did not know is kept without `period_s`, as the
    site's own row is (docs/protocol.md, `period_unknown`)."""
    doc = canonical_doc(reading)
    if not period_known:
        del doc["period_s"]
    if reading.sig is not None:
        doc["sig"] = reading.sig
    return doc
