"""The hub's ingest: a forwarded batch in, checked, stored (idempotently), then acknowledged.

Order matters for "exactly once": commit, then publish the `HubAck`, then acknowledge the MQTT
message. A hub killed between any two steps gets the batch again (its broker session keeps it) and
stores nothing twice, since `(site, node, seq)` is the primary key; the site resends a batch whose
ack it never saw, with the same result.

What is refused — a batch on another site's topic, a reading of another site, a key the site's
identity did not vouch for, a signature that does not verify — is kept in `reject` with its reason
and counted, and acknowledged as refused: sending it again cannot make it right. Field records (maintenance
visits, accepted observations and their decisions) are stored once under the site's names for
them; one that differs from what is stored under its name is refused the same way (field_conflict).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from contract.clock import utc_now
from contract.hub import ForwardBatch, ForwardedKey, HubAck, ack_topic, site_of_forward_topic
from contract.signing import canonical_bytes, public_from_b64, raw_public_from_b64, signature_from_b64
from contract.wire import ReadingPayload
from gateway.stores.postgres_hub import HubStore, StoredKey, Verdicted
from gateway.subscriber import Message
from gateway.trust.registry import KeyRecord
from gateway.trust.reverify import offline_key
from gateway.trust.verifier import sodium_verify

if TYPE_CHECKING:
    from gateway.hub.rules import HubRules

log = logging.getLogger(__name__)


@dataclass
class HubStats:
    batches: int = 0
    stored: int = 0
    duplicate: int = 0
    refused: Counter[str] = field(default_factory=Counter)
    hub_alerts: int = 0
    field_stored: int = 0  # rows of field records: visits, observations, decisions
    field_duplicate: int = 0


class HubIngest:
    def __init__(
        self,
        store: HubStore,
        prefix: str,
        stats: HubStats | None = None,
        clock: Callable[[], datetime] = utc_now,
        rules: HubRules | None = None,
    ) -> None:
        self._store, self._prefix, self._clock = store, prefix, clock
        self.stats = stats or HubStats()
        self._rules = rules

    def close(self) -> None:
        self._store.close()

    def handle(self, msg: Message) -> tuple[str, bytes] | None:
        """Store one forwarded batch; return the ack to publish (topic, payload), or None for
        input that names no site to answer."""
        site = site_of_forward_topic(self._prefix, msg.topic)
        try:
            batch = ForwardBatch.model_validate_json(msg.payload)
        except ValidationError as exc:
            self._refuse(site, "malformed", str(exc), msg.payload)
            return None
        if site is None or batch.site != site:
            self._refuse(site, "wrong_site", f"a batch of {batch.site!r} on {msg.topic}", msg.payload)
            return None
        identity_b64 = self._store.site_identity(site)
        if identity_b64 is None:
            self._refuse(site, "unknown_site", f"{site!r} has not joined this hub", msg.payload)
            return None
        refused = self._take_keys(site, identity_b64, batch.keys)
        keys = self._store.keys(site)
        records: dict[str, tuple[KeyRecord, bytes]] = {}  # once per batch, not per reading
        checked: list[Verdicted] = []
        received = batch.received or [None] * len(batch.readings)
        period_unknown = set(batch.period_unknown)  # unsigned, stored without their period at the site
        for i, (reading, stored_at) in enumerate(zip(batch.readings, received, strict=True)):
            checked_or_reason = self._check(site, reading, stored_at, keys, records)
            if isinstance(checked_or_reason, Verdicted):
                if i in period_unknown:
                    checked_or_reason = replace(checked_or_reason, period_known=False)
                checked.append(checked_or_reason)
            else:
                reason = checked_or_reason
                refused += 1
                self._refuse(
                    site, reason, f"{reading.node} seq {reading.seq}", reading.model_dump_json().encode()
                )
        alerts = []
        for doc in batch.alerts:
            if doc.get("site") != site or not all(
                isinstance(doc.get(k), str) for k in ("node", "id", "state", "ts")
            ):
                refused += 1
                self._refuse(site, "wrong_site" if doc.get("site") != site else "malformed", "alert event",
                             json.dumps(doc).encode())  # fmt: skip
            else:
                alerts.append(doc)
        result = self._store.write_readings(checked)
        fields = self._store.write_field(site, batch.visits, batch.observations)
        for detail, payload in fields.conflicts:  # never replaced: kept for review, and final
            refused += 1
            self._refuse(site, "field_conflict", detail, payload)
        self._store.write_statuses(site, batch.statuses)
        self._store.write_alerts(site, alerts)
        self._store.open_warnings(site, alerts, self._clock())
        if self._rules is not None:  # the hub's own rules, over every site's readings (rules.py)
            self._record(self._rules.on_readings(v.reading for v in checked))
        self.stats.batches += 1
        self.stats.stored += result.stored
        self.stats.duplicate += result.duplicate
        self.stats.field_stored += fields.stored
        self.stats.field_duplicate += fields.duplicate
        ack = HubAck(
            site=site, batch=batch.batch, stored=result.stored + fields.stored,
            duplicate=result.duplicate + fields.duplicate, refused=refused,
        )  # fmt: skip
        return ack_topic(self._prefix, site), ack.model_dump_json().encode()

    def tick(self) -> None:
        """The hub's time-based rules (offline), about once a second."""
        if self._rules is not None:
            self._record(self._rules.tick())

    def _record(self, events: dict[str, list[dict[str, Any]]]) -> None:
        for at, docs in events.items():
            self.stats.hub_alerts += len(docs)
            self._store.write_alerts(at, docs)
            self._store.open_warnings(at, docs, self._clock())

    def _take_keys(self, site: str, identity_b64: str, keys: list[ForwardedKey]) -> int:
        if not keys:
            return 0
        identity = public_from_b64(identity_b64)
        known = self._store.keys(site)
        refused = 0
        for key in keys:
            reason = None
            try:
                record = KeyRecord.model_validate(key.record)
            except ValidationError as exc:
                reason, detail = "malformed_key", str(exc)
            else:
                detail = f"key {record.kid} of {record.site}/{record.node}"
                if record.site != site:
                    reason = "wrong_site"
                elif not key.is_vouched_by(identity):
                    reason = "key_not_vouched"
                elif record.kid in known and known[record.kid].record.get("public_key") != record.public_key:
                    reason = "key_conflict"
            if reason is not None:
                refused += 1
                self._refuse(site, reason, detail, key.model_dump_json().encode())
                continue
            self._store.put_key(key.record, key.vouch)
        return refused

    @staticmethod
    def _check(
        site: str,
        reading: ReadingPayload,
        stored_at: datetime | None,
        keys: dict[str, StoredKey],
        records: dict[str, tuple[KeyRecord, bytes]],
    ) -> Verdicted | str:
        """The reading checked, or why it is refused. A key the site revoked vouches for what the
        site stored before the revocation (`stored_at`, the site's `received`), as at the site and
        in contract/verify_offline.py; without that time, for nothing. The canonical bytes built
        to verify the signature are kept with it, to be stored as they are."""
        if reading.site != site:
            return "wrong_site"
        if reading.sig is None or reading.kid is None:
            return Verdicted(reading, "unsigned", stored_at)  # an unprovisioned node, as at the site
        stored = keys.get(reading.kid)
        if stored is None or stored.node != reading.node:
            return "unknown_key"
        known = records.get(reading.kid)
        if known is None:
            record = KeyRecord.model_validate(stored.record)
            known = records[reading.kid] = (record, raw_public_from_b64(record.public_key))
        record, public = known
        if not record.accepts(reading.ts) and (
            stored_at is None or not offline_key(record).trusts(reading.ts, stored_at)
        ):
            return "key_not_accepted"
        canonical = canonical_bytes(reading)
        # libsodium's check, as at the site (gateway/trust/verifier.py): half OpenSSL's CPU
        sig = signature_from_b64(reading.sig)
        if sig is None or not sodium_verify(public, sig, canonical):
            return "bad_signature"
        # The stored document is the canonical one with its signature (`_payload`): the same JSON
        # with one key more, appended (a canonical object never holds `sig`).
        signed = canonical[:-1] + b',"sig":"' + reading.sig.encode("ascii") + b'"}'
        return Verdicted(reading, "verified", stored_at, signed=signed)

    def _refuse(self, site: str | None, reason: str, detail: str, payload: bytes) -> None:
        self.stats.refused[reason] += 1
        log.warning("refused from %s: %s (%s)", site or "?", reason, detail)
        self._store.reject(site, reason, detail, payload)
