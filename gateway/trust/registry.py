"""The gateway's key registry: one JSON file per public key in a directory (`<data_dir>/keys`).

A directory of small files, because it is what a third party needs to re-verify an export (copy it,
publish it) and because `provision` can replace one file atomically while the gateway reads the
others. The gateway rereads it when any file changes (checked at most once a second) or on SIGHUP,
so a revocation takes effect without a restart.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from contract.configfile import ConfigError
from contract.signing import KID_PATTERN, key_id_of_raw, public_from_b64, raw_public_from_b64, write_secret
from contract.wire import ID_PATTERN

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey


class KeyStatus(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"  # rotated or decommissioned: still good for readings taken before `since`
    REVOKED = "revoked"  # compromised since `since`: good only for readings stored before then


class KeyRecord(BaseModel):
    """One registered public key (`<kid>.json`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kid: str = Field(pattern=KID_PATTERN)
    site: str = Field(pattern=ID_PATTERN)
    node: str = Field(pattern=ID_PATTERN)
    public_key: str = Field(description="base64 of the raw 32-byte Ed25519 public key")
    created: datetime
    status: KeyStatus = KeyStatus.ACTIVE
    since: datetime | None = Field(
        default=None, description="retired: from when; revoked: since when the key is untrusted"
    )

    @field_validator("public_key")
    @classmethod
    def _is_a_key(cls, value: str) -> str:
        try:
            raw_public_from_b64(value)  # what cryptography checks, without loading it (9 MB)
        except ValueError:  # binascii.Error is one
            raise ValueError("not a base64 raw Ed25519 public key (32 bytes)") from None
        return value

    @model_validator(mode="after")
    def _kid_is_the_keys(self) -> KeyRecord:
        kid = key_id_of_raw(raw_public_from_b64(self.public_key))
        if kid != self.kid:
            raise ValueError(f"kid {self.kid} is not the id of this public key ({kid})")
        return self

    def public(self) -> Ed25519PublicKey:
        return public_from_b64(self.public_key)

    def accepts(self, ts: datetime) -> bool:
        """Whether the gateway may store now a reading taken at `ts` with this key's signature."""
        if self.status is KeyStatus.ACTIVE:
            return True
        return self.status is KeyStatus.RETIRED and self.since is not None and ts < self.since

    def public_doc(self) -> dict[str, Any]:
        """What the dashboard publishes (/api/v1/keys) and a bundle carries: the record, the key's
        SHA-256 fingerprint, and in words which readings it vouches for (docs/trust.md)."""
        doc = self.model_dump(mode="json")
        doc["fingerprint"] = hashlib.sha256(base64.b64decode(self.public_key)).hexdigest()
        since = doc["since"]
        doc["valid_from"] = doc["created"]
        doc["valid_until"] = since
        doc["vouches_for"] = {
            KeyStatus.ACTIVE: "every reading it signed",
            KeyStatus.RETIRED: f"readings it signed with ts before {since}",
            KeyStatus.REVOKED: f"readings the gateway stored (column `received`) before {since}",
        }[self.status]
        return doc


class RegistryError(ConfigError):
    """A key file that cannot be read; the message names it."""


def load_dir(path: Path) -> dict[str, KeyRecord]:
    records: dict[str, KeyRecord] = {}
    if not path.is_dir():
        return records
    for file in sorted(path.glob("*.json")):
        try:
            record = KeyRecord.model_validate_json(file.read_bytes())
        except (OSError, ValidationError) as exc:
            raise RegistryError(f"{file}: not a key record: {exc}") from exc
        if file.stem != record.kid:
            raise RegistryError(f"{file}: holds key {record.kid}; the file must be named {record.kid}.json")
        records[record.kid] = record
    return records


def save(path: Path, record: KeyRecord) -> None:
    """Write one record atomically (public data, but written with the same care as secrets)."""
    path.mkdir(parents=True, exist_ok=True)
    write_secret(path / f"{record.kid}.json", (record.model_dump_json(indent=2) + "\n").encode())
    (path / f"{record.kid}.json").chmod(0o644)


class KeyRegistry:
    """The keys in a directory, reread when it changes. `check_every_s` bounds the cost of
    watching to one directory listing a second however many readings arrive."""

    def __init__(
        self,
        path: Path,
        *,
        check_every_s: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._check_every_s = check_every_s
        self._monotonic = monotonic
        self._stamp: tuple[tuple[str, int, int], ...] | None = None
        self._next_check = 0.0
        self._records: dict[str, KeyRecord] = {}
        self._nodes: set[tuple[str, str]] = set()
        self.reload()

    def _listing(self) -> tuple[tuple[str, int, int], ...]:
        if not self.path.is_dir():
            return ()
        out = []
        for file in self.path.glob("*.json"):
            try:
                st = file.stat()
            except FileNotFoundError:
                continue
            out.append((file.name, st.st_mtime_ns, st.st_size))
        return tuple(sorted(out))

    def reload(self) -> None:
        """Reread now (SIGHUP). A broken file keeps the previous registry and raises."""
        stamp = self._listing()
        records = load_dir(self.path)
        self._records = records
        self._nodes = {(r.site, r.node) for r in records.values()}
        self._stamp = stamp
        self._next_check = self._monotonic() + self._check_every_s

    def refresh(self) -> bool:
        """Reread if any file changed since the last look; True when it did."""
        now = self._monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + self._check_every_s
        if self._listing() == self._stamp:
            return False
        self.reload()
        return True

    def request_reload(self) -> None:
        """Reread at the next look (safe from a signal handler: it only clears two fields)."""
        self._stamp, self._next_check = None, 0.0

    def get(self, kid: str) -> KeyRecord | None:
        return self._records.get(kid)

    def has_node(self, site: str, node: str) -> bool:
        """Whether any key (in any state) was ever registered for this node."""
        return (site, node) in self._nodes

    def records(self) -> list[KeyRecord]:
        return list(self._records.values())
