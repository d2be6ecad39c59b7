"""A key the site revoked after a compromise still vouches, at the hub, for what the site stored
before the revocation — judged by the site's stored time, which a ForwardBatch carries
(`received`), as the site and contract/verify_offline.py judge it; without that time, for nothing.
The hub's own ingest over a real PostgreSQL, fed real batches as the broker would hand them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from contract.hub import ForwardBatch, ForwardedKey
from contract.signing import Signer, public_b64
from gateway.hub.ingest import HubIngest
from gateway.stores.postgres_hub import HubStore
from tests.alert_helpers import reading
from tests.gateway.hub.hubdata import as_message

NOW = datetime.now(UTC).replace(microsecond=0)
REVOKED = NOW - timedelta(hours=1)  # the key is untrusted from then on


def test_a_revoked_key_vouches_for_what_the_site_stored_before_the_revocation(hub: HubStore, pg: str) -> None:
    hub.add_jurisdiction("soum", "Soum", f"j_soum_{uuid.uuid4().hex[:8]}")
    identity, node = Signer.generate(), Signer.generate()
    hub.add_site("tsagaan", "soum", public_b64(identity.private.public_key()))
    record = {
        "kid": node.kid, "site": "tsagaan", "node": "a", "public_key": public_b64(node.private.public_key()),
        "created": "2026-01-01T00:00:00Z", "status": "revoked",
        "since": REVOKED.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }  # fmt: skip
    ingest = HubIngest(hub, "hub")
    vouched = ForwardedKey.vouched(record, identity.private)
    ingest.handle(as_message(ForwardBatch(site="tsagaan", batch=1, keys=[vouched])))
    before = [node.sign(reading("a", REVOKED - timedelta(minutes=m), 1.0)) for m in (30, 20)]
    after_ts = node.sign(reading("a", REVOKED + timedelta(minutes=5), 2.0))
    # stored at the site before the revocation (received), and a thief's reading stamped early but
    # stored after it, and one the site sent without its stored time (an earlier version's outbox)
    ingest.handle(as_message(ForwardBatch(
        site="tsagaan", batch=2, readings=[*before, after_ts],
        received=[REVOKED - timedelta(minutes=m) for m in (29, 19, -6)],
    )))  # fmt: skip
    late = node.sign(reading("a", REVOKED - timedelta(minutes=10), 3.0))
    stolen = node.sign(reading("a", REVOKED - timedelta(minutes=40), 4.0))
    ingest.handle(as_message(ForwardBatch(
        site="tsagaan", batch=3, readings=[late, stolen], received=[REVOKED + timedelta(minutes=1), None],
    )))  # fmt: skip
    ingest.handle(
        as_message(ForwardBatch(site="tsagaan", batch=4, readings=[node.sign(reading("a", NOW, 5.0))]))
    )
    with psycopg.connect(pg) as conn:
        rows = conn.execute("SELECT seq, verdict, site_received FROM reading ORDER BY seq").fetchall()
    assert rows == [
        (before[0].seq, "verified", REVOKED - timedelta(minutes=29)),
        (before[1].seq, "verified", REVOKED - timedelta(minutes=19)),
    ]
    # stored after the revocation (two), no stored time said (two): refused, kept and counted
    assert hub.rejects() == {"key_not_accepted": 4}
    assert ingest.stats.refused["key_not_accepted"] == 4


def test_received_times_are_one_per_reading() -> None:
    with pytest.raises(ValueError, match="2 received times for 1 readings"):
        ForwardBatch(site="tsagaan", batch=1, readings=[reading("a", NOW, 1.0)], received=[NOW, NOW])
