"""The hub's write path: checked readings go by COPY into a staging table and from there into
`reading` once each, with the hourly aggregates grown only by what was newly stored — for a batch
that repeats itself, a batch delivered again, and two connections (two hub processes on a shared
subscription) writing overlapping batches at the same time."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import psycopg

from contract.hub import ForwardBatch, ForwardedKey, HubAck
from contract.signing import Signer, public_b64, verify_signature
from contract.wire import ReadingPayload
from gateway.hub.ingest import HubIngest
from gateway.stores.postgres_hub import HubStore, Verdicted, _payload
from tests.alert_helpers import reading
from tests.gateway.hub.hubdata import as_message

HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=3)


def _join(hub: HubStore, site: str) -> tuple[Signer, Signer]:
    identity, node = Signer.generate(), Signer.generate()
    hub.add_jurisdiction(site, site.title(), f"j_{site}_{uuid.uuid4().hex[:8]}")
    hub.add_site(site, site, public_b64(identity.private.public_key()))
    return identity, node


def _key(site: str, node: Signer, identity: Signer) -> ForwardedKey:
    record = {"kid": node.kid, "site": site, "node": "a", "public_key": public_b64(node.private.public_key()),
              "created": "2026-01-01T00:00:00Z", "status": "active", "since": None}  # fmt: skip
    return ForwardedKey.vouched(record, identity.private)


def _hourly(pg: str, site: str) -> tuple[int, float]:
    with psycopg.connect(pg) as conn:
        row = conn.execute(
            "SELECT sum(n), sum(total) FROM reading_hourly WHERE site = %s AND metric = 'pm2_5'", [site]
        ).fetchone()
    assert row is not None
    return int(row[0] or 0), float(row[1] or 0.0)


def test_a_batch_is_stored_once_as_signed_and_its_refusals_are_kept(hub: HubStore, pg: str) -> None:
    identity, node = _join(hub, "tsagaan")
    ingest = HubIngest(hub, "hub")
    ingest.handle(as_message(ForwardBatch(site="tsagaan", batch=1, keys=[_key("tsagaan", node, identity)])))
    signed = [node.sign(reading("a", HOUR + timedelta(minutes=m), float(m))) for m in range(5)]
    unsigned = reading("b", HOUR, 7.0)  # an unprovisioned node: stored as unsigned
    forged = signed[0].model_copy(update={"seq": 999_999})  # the signature no longer matches
    # the batch holds one reading twice: it is stored (and counted in the hourly means) once
    batch = ForwardBatch(site="tsagaan", batch=2, readings=[*signed, signed[2], unsigned, forged])
    answer = ingest.handle(as_message(batch))
    assert answer is not None
    ack = HubAck.model_validate_json(answer[1])
    assert (ack.stored, ack.duplicate, ack.refused) == (6, 1, 1)
    again = ingest.handle(as_message(batch))  # delivered again (the hub died before its ack)
    assert again is not None
    ack = HubAck.model_validate_json(again[1])
    assert (ack.stored, ack.duplicate, ack.refused) == (0, 7, 1)
    assert hub.rejects() == {"bad_signature": 2}
    assert _hourly(pg, "tsagaan") == (6, sum(range(5)) + 7.0)
    with psycopg.connect(pg) as conn:
        rows = conn.execute(
            "SELECT node, seq, verdict, payload, metrics FROM reading ORDER BY node, seq"
        ).fetchall()
    assert [(r[0], r[2]) for r in rows] == [("a", "verified")] * 5 + [("b", "unsigned")]
    for (_, seq, _, payload, metrics), original in zip(rows, [*signed, unsigned], strict=True):
        assert seq == original.seq
        assert payload == _payload(original)  # the document as signed: a row alone verifies
        assert metrics == {"pm2_5": original.metrics[next(iter(original.metrics))].value}
    stored = ReadingPayload.model_validate(rows[0][3])
    assert verify_signature(node.private.public_key(), stored)


def test_two_connections_writing_overlapping_batches_store_each_reading_once(hub: HubStore, pg: str) -> None:
    """As two hub processes would on a shared subscription when a site resends: every reading
    once, the hourly aggregates grown once per reading, and no deadlock (both insert in key order).
    A month no other test writes, so that both make its partition at the same moment."""
    _join(hub, "ulaan")
    month = datetime(2024, 2, 1, tzinfo=UTC)
    readings = [reading(n, month + timedelta(minutes=m), float(m % 7), site="ulaan")
                for m in range(120) for n in ("a", "b", "c")]  # fmt: skip
    # overlapping halves, each in its own order: the first reversed, the second shuffled by node
    first = [Verdicted(r, "unsigned") for r in reversed(readings[:240])]
    second = [Verdicted(r, "unsigned") for r in sorted(readings[120:], key=lambda r: (r.node, -r.seq))]
    stores = [HubStore(pg), HubStore(pg)]
    results: dict[int, tuple[int, int]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def write(i: int, rows: list[Verdicted]) -> None:
        try:
            start.wait()
            total = [0, 0]
            for k in range(0, len(rows), 40):  # batches of 40, interleaved with the other writer's
                result = stores[i].write_readings(rows[k : k + 40])
                total[0] += result.stored
                total[1] += result.duplicate
            results[i] = (total[0], total[1])
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i, rows)) for i, rows in enumerate((first, second))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for store in stores:
        store.close()
    assert not errors, errors
    stored = results[0][0] + results[1][0]
    assert stored == len(readings) == hub.count("ulaan")
    assert results[0][1] + results[1][1] == 120  # the overlap, refused once by one or the other
    assert _hourly(pg, "ulaan") == (len(readings), sum(float(m % 7) for m in range(120)) * 3)
