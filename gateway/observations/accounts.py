"""Monitor accounts: who may moderate residents' observations and record maintenance visits from
the dashboard. Made with `minewatch-gateway monitors add`; kept in `<data_dir>/monitors.sqlite`.

A password is kept only as a scrypt hash (hashlib.scrypt, RFC 7914: n=2^14, r=8, p=1, a 16-byte
salt; ~16 MB and some tens of milliseconds per try, which is what makes guessing dear). A session is
a random 256-bit token in an HttpOnly, SameSite=Strict cookie, of which only the SHA-256 is kept
here, so a copy of this file opens no session; logging out or disabling the account ends it on the
server at once (a signed cookie alone could not be taken back). Each session has its own CSRF token
for the dashboard's forms. Failed logins are counted per account and per address: past
MAX_FAILURES for an account (or MAX_ADDRESS_FAILURES from one address) within LOCK_WINDOW, logins
are refused, even with the right password, until the window has passed.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

ACCOUNTS_FILE = "monitors.sqlite"
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SCRYPT_MAXMEM = 64 * 1024 * 1024
PASSWORD_MIN = 10
PASSWORD_MAX = 256  # scrypt's cost does not grow with the length, but a request body should not
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")
SESSION_TTL = timedelta(hours=12)
LOCK_WINDOW = timedelta(minutes=15)
MAX_FAILURES = 5
MAX_ADDRESS_FAILURES = 20

SCHEMA = """
CREATE TABLE IF NOT EXISTS monitors (name TEXT PRIMARY KEY, password TEXT NOT NULL,
  created TEXT NOT NULL, disabled TEXT, disabled_by TEXT);
CREATE TABLE IF NOT EXISTS sessions (token_sha256 TEXT PRIMARY KEY, monitor TEXT NOT NULL,
  csrf TEXT NOT NULL, created TEXT NOT NULL, expires TEXT NOT NULL, ended TEXT,
  FOREIGN KEY (monitor) REFERENCES monitors (name));
CREATE TABLE IF NOT EXISTS failures (name TEXT NOT NULL, address TEXT NOT NULL, at TEXT NOT NULL);
"""


class AccountError(ValueError):
    """A name or password the command refuses; nothing is stored."""


class BadLogin(Exception):
    """Wrong name or password (which of the two is not said)."""


class LockedOut(Exception):
    """Too many failed logins lately; `retry_after` is when to try again."""

    def __init__(self, retry_after: datetime) -> None:
        super().__init__("too many failed logins: wait before trying again")
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Monitor:
    name: str
    created: datetime
    disabled: datetime | None


@dataclass(frozen=True, slots=True)
class Session:
    token: str  # the cookie's value (only its hash is stored)
    monitor: str
    csrf: str
    expires: datetime


def _iso(ts: datetime) -> str:
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$salt$hash` (base64), so the cost can be raised later for new passwords."""
    salt = salt or secrets.token_bytes(16)
    key = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


def check_password(password: str, stored: str) -> bool:
    scheme, n, r, p, salt, key = stored.split("$")
    if scheme != "scrypt":
        return False
    got = hashlib.scrypt(
        password.encode(),
        salt=base64.b64decode(salt),
        n=int(n),
        r=int(r),
        p=int(p),
        maxmem=SCRYPT_MAXMEM,
        dklen=len(base64.b64decode(key)),
    )
    return hmac.compare_digest(got, base64.b64decode(key))


@functools.cache
def _dummy() -> str:
    """Checked against when the name is unknown, so an unknown name costs what a wrong password does.

    Made at the first login, not at import: every `minewatch-gateway` process imports this module
    (the `monitors` command's parser), and scrypt's 16 MB at import set `run`'s peak memory, about
    12 MB above what ingest itself ever used (docs/operations.md, "Ingest benchmark")."""
    return hash_password("not a password of anyone", b"0" * 16)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_new_password(password: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise AccountError(f"a password has {PASSWORD_MIN} to {PASSWORD_MAX} characters")
    if not password.isprintable():
        raise AccountError("a password has printable characters only")


class Accounts:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
        self._db.execute("PRAGMA journal_mode=WAL")  # the CLI adds accounts while the dashboard serves
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, name: str, password: str, now: datetime) -> Monitor:
        if not NAME.match(name):
            raise AccountError("a monitor's name is 1 to 32 letters, digits, '.', '_' or '-'")
        check_new_password(password)
        stored = hash_password(password)
        with self._lock:
            try:
                self._db.execute("INSERT INTO monitors (name, password, created) VALUES (?, ?, ?)",
                                 (name, stored, _iso(now)))  # fmt: skip
            except sqlite3.IntegrityError:
                raise AccountError(f"a monitor {name!r} exists already") from None
        return Monitor(name, now, None)

    def disable(self, name: str, by: str, now: datetime) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE monitors SET disabled = ?, disabled_by = ? WHERE name = ? AND disabled IS NULL",
                (_iso(now), by, name),
            )
            self._db.execute(
                "UPDATE sessions SET ended = ? WHERE monitor = ? AND ended IS NULL", (_iso(now), name)
            )
        return cur.rowcount == 1

    def monitors(self) -> list[Monitor]:
        with self._lock:
            rows = self._db.execute("SELECT name, created, disabled FROM monitors ORDER BY name").fetchall()
        return [Monitor(str(n), _dt(c), _dt(d) if d else None) for n, c, d in rows]

    def _locked_until(self, name: str, address: str, now: datetime) -> datetime | None:
        since = _iso(now - LOCK_WINDOW)
        with self._lock:
            last_in = self._db.execute(
                "SELECT max(created) FROM sessions WHERE monitor = ?", (name,)
            ).fetchone()[0]
            after = max(since, last_in or since)  # a successful login starts the count again
            mine = self._db.execute(
                "SELECT count(*), min(at) FROM failures WHERE name = ? AND at > ?", (name, after)
            ).fetchone()
            theirs = self._db.execute(
                "SELECT count(*), min(at) FROM failures WHERE address = ? AND at > ?", (address, since)
            ).fetchone()
        for (count, first), limit in ((mine, MAX_FAILURES), (theirs, MAX_ADDRESS_FAILURES)):
            if int(count) >= limit:
                return _dt(first) + LOCK_WINDOW
        return None

    def login(self, name: str, password: str, address: str, now: datetime) -> Session:
        """A new session, or BadLogin (counted), or LockedOut (nothing checked)."""
        until = self._locked_until(name, address, now)
        if until is not None:
            raise LockedOut(until)
        with self._lock:
            row = self._db.execute(
                "SELECT password FROM monitors WHERE name = ? AND disabled IS NULL", (name,)
            ).fetchone()
        ok = check_password(password[:PASSWORD_MAX], str(row[0]) if row else _dummy()) and row is not None
        if not ok:
            with self._lock:
                self._db.execute("INSERT INTO failures VALUES (?, ?, ?)", (name[:64], address, _iso(now)))
            raise BadLogin("wrong name or password")
        session = Session(secrets.token_urlsafe(32), name, secrets.token_urlsafe(24), now + SESSION_TTL)
        with self._lock:
            self._db.execute(
                "INSERT INTO sessions (token_sha256, monitor, csrf, created, expires) VALUES (?, ?, ?, ?, ?)",
                (token_hash(session.token), name, session.csrf, _iso(now), _iso(session.expires)),
            )
        return session

    def session(self, token: str, now: datetime) -> Session | None:
        """The live session the cookie names: not ended, not expired, its account not disabled."""
        if not token or len(token) > 100:
            return None
        with self._lock:
            row = self._db.execute(
                "SELECT s.monitor, s.csrf, s.expires FROM sessions s JOIN monitors m ON m.name = s.monitor "
                "WHERE s.token_sha256 = ? AND s.ended IS NULL AND m.disabled IS NULL",
                (token_hash(token),),
            ).fetchone()
        if row is None or _dt(row[2]) <= now:
            return None
        return Session(token, str(row[0]), str(row[1]), _dt(row[2]))

    def logout(self, token: str, now: datetime) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE sessions SET ended = ? WHERE token_sha256 = ? AND ended IS NULL",
                (_iso(now), token_hash(token)),
            )
