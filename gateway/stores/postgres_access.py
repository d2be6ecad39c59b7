"""Who reads the hub, and what is public: API tokens and the agreements in force (docs/region.md).

A token is `mwh_<id>_<secret>`: the id finds the row, the secret is 32 random bytes of which only
the SHA-256 is stored (a secret that long needs no slow hash: nobody can guess it, and a stolen
table gives nothing to log in with). A token maps to one jurisdiction, whose role the hub's web
server then reads as. Revoking sets `revoked`; the row is kept, so who made and who revoked which
token, when, stays on record. This module runs as the hub's own role: the readers' roles have no
grant on `api_token`.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from gateway.stores.postgres_hub import HubInputError, HubStoreError

TOKEN = re.compile(r"^mwh_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True, slots=True)
class Reader:
    """Whom a valid token reads for."""

    jurisdiction: str
    role: str
    token_id: str


@dataclass(frozen=True, slots=True)
class TokenInfo:
    id: str
    jurisdiction: str
    label: str
    created: datetime
    created_by: str
    revoked: datetime | None
    revoked_by: str | None


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class HubAccess:
    """One connection, shared by the web server's threads (psycopg serialises its use; every query
    here is one statement, its rows fetched at once). A lost connection is made again on the next
    query, so the server outlives a database restart."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._lock = threading.Lock()
        self._conn = self._connect()

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self._dsn, autocommit=True)
        except psycopg.OperationalError as exc:
            raise HubStoreError(f"cannot connect to the hub database: {exc}") from exc

    def close(self) -> None:
        self._conn.close()

    def _run(self, query: str, params: list[Any]) -> list[tuple[Any, ...]]:
        with self._lock:
            if self._conn.closed or self._conn.broken:
                self._conn = self._connect()
            conn = self._conn
        try:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise HubStoreError(f"the hub database: {exc}") from exc
        except psycopg.IntegrityError as exc:
            raise HubInputError(f"the hub database refused it: {exc.diag.message_primary or exc}") from exc

    # --- tokens ---

    def make_token(self, jurisdiction: str, label: str, by: str, now: datetime) -> str:
        """A new token for the jurisdiction; the only time its text exists is this return value."""
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        rows = self._run("SELECT 1 FROM jurisdiction WHERE id = %s", [jurisdiction])
        if not rows:
            raise HubInputError(f"no jurisdiction {jurisdiction!r}; register it with `hub jurisdiction`")
        self._run(
            "INSERT INTO api_token (id, jurisdiction, secret_sha256, label, created, created_by)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            [token_id, jurisdiction, _digest(secret), label, now, by],
        )
        return f"mwh_{token_id}_{secret}"

    def revoke_token(self, token_id: str, by: str, now: datetime) -> bool:
        """False when there is no such token, or it was revoked already (the first revocation stays)."""
        rows = self._run(
            "UPDATE api_token SET revoked = %s, revoked_by = %s"
            " WHERE id = %s AND revoked IS NULL RETURNING id",
            [now, by, token_id],
        )
        return bool(rows)

    def tokens(self) -> list[TokenInfo]:
        rows = self._run(
            "SELECT id, jurisdiction, label, created, created_by, revoked, revoked_by FROM api_token"
            " ORDER BY created, id",
            [],
        )
        return [TokenInfo(*r) for r in rows]

    def reader_of(self, token: str) -> Reader | None:
        """The jurisdiction a presented token reads for; None for a malformed, unknown or revoked
        one (the caller answers 401 without saying which)."""
        match = TOKEN.match(token.strip())
        if match is None:
            return None
        rows = self._run(
            "SELECT t.secret_sha256, t.jurisdiction, j.db_role FROM api_token t"
            " JOIN jurisdiction j ON j.id = t.jurisdiction WHERE t.id = %s AND t.revoked IS NULL",
            [match.group(1)],
        )
        if not rows or not hmac.compare_digest(rows[0][0], _digest(match.group(2))):
            return None
        return Reader(str(rows[0][1]), str(rows[0][2]), match.group(1))

    def role_of(self, jurisdiction: str) -> str | None:
        rows = self._run("SELECT db_role FROM jurisdiction WHERE id = %s", [jurisdiction])
        return str(rows[0][0]) if rows else None

    # --- what is public ---

    def agreements(self, now: datetime) -> list[dict[str, Any]]:
        """The latest version of every agreement whose validity has not ended, whole (every column
        the agreement table has), with the grantor's and grantee's names and `in_force` (its window
        has begun). Read as the hub's role: the list is public, whoever asks."""
        rows = self._run(
            "SELECT to_jsonb(a), g.name, e.name, a.valid_from <= %s, extract(epoch FROM a.delay)::bigint"
            " FROM agreement a"
            " JOIN jurisdiction g ON g.id = a.grantor JOIN jurisdiction e ON e.id = a.grantee"
            " WHERE a.version = (SELECT max(b.version) FROM agreement b WHERE b.name = a.name)"
            "   AND (a.valid_to IS NULL OR a.valid_to > %s)"
            " ORDER BY a.grantor, a.name",
            [now, now],
        )
        out = []
        for doc, grantor_name, grantee_name, in_force, delay_s in rows:
            names = {"grantor_name": grantor_name, "grantee_name": grantee_name}
            out.append({**doc, **names, "delay_s": int(delay_s), "in_force": bool(in_force)})
        return out
