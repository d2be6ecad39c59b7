"""Signature checks off the main thread (gateway/trust/checker.py): a signed reading is still stored
and acknowledged only after its signature passed and it is durable; a bad signature is refused and
kept as a dead letter; a worker that dies costs only time. Real influxd, real worker process."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract.signing import Signer, canonical_bytes, public_b64, signature_from_b64
from contract.wire import ReadingPayload
from gateway.config import InfluxConfig
from gateway.deadletter import DeadLetters
from gateway.ingest import Ingest
from gateway.stores.base import StoreError
from gateway.stores.influx_v1 import InfluxV1
from gateway.subscriber import Message
from gateway.trust.checker import Checks, InlineChecks, WorkerChecks
from gateway.trust.registry import KeyRecord, KeyRegistry, save
from gateway.trust.sigworker import COUNT, HEAD, serve
from gateway.trust.verifier import RequireSignatures, SignatureCheck, Verifier
from gateway.validate import parse_reading
from tests.helpers import Influx

SIGNER = Signer.from_seed(b"\x07" * 32)
OTHER = Signer.from_seed(b"\x08" * 32)
NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
TOPIC = "minewatch/v1/s/n/reading"


def _reading(seq: int) -> ReadingPayload:
    return ReadingPayload.model_validate(
        {
            "schema": 1,
            "site": "s",
            "node": "n",
            "seq": seq,
            "ts": (NOW - timedelta(minutes=300 - seq)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "period_s": 60,
            "metrics": {"pm2_5": {"value": 10.0 + seq, "raw": 11.0, "n": 60}},
            "flags": [],
        }
    )


FORMS = ["sent", "published", "one-space"]


def _signed(seq: int, signer: Signer = SIGNER, form: str = "sent") -> bytes:
    """As a node sends it (the canonical form, `sig` last), in the contract's field order (earlier
    nodes), or the node's bytes with one space: each checked over the canonical form rebuilt."""
    if form == "published":
        return signer.sign(_reading(seq)).to_wire()
    sent = signer.sign_wire(_reading(seq))
    return sent.replace(b'"n":60', b'"n": 60') if form == "one-space" else sent


def _forged(seq: int) -> bytes:
    """Signed by the node, then a value changed on the way: the signature no longer matches."""
    doc = json.loads(_signed(seq))
    doc["metrics"]["pm2_5"]["value"] = 99.0
    return json.dumps(doc).encode()


def _forged_as_sent(seq: int) -> bytes:
    """The same in the node's own form: only the value's bytes differ."""
    forged = _signed(seq).replace(b'"raw":11.0', b'"raw":12.0')
    assert forged != _signed(seq)
    return forged


def _msg(payload: bytes, mid: int) -> Message:
    return Message(TOPIC, payload, mid, 1, False, time.monotonic())


@pytest.fixture
def verifier(tmp_path: Path) -> Verifier:
    save(
        tmp_path / "keys",
        KeyRecord(
            kid=SIGNER.kid,
            site="s",
            node="n",
            public_key=public_b64(SIGNER.private.public_key()),
            created=datetime(2026, 1, 1, tzinfo=UTC),
        ),
    )
    return Verifier(KeyRegistry(tmp_path / "keys"), RequireSignatures.ALWAYS)


@pytest.fixture
def worker() -> Iterator[WorkerChecks]:
    checks = WorkerChecks()
    yield checks
    checks.close()


def _ingest(
    influx_url: str, db: str, tmp: Path, verifier: Verifier, checks: Checks, acked: list[Message]
) -> tuple[Ingest, DeadLetters]:
    dead = DeadLetters(tmp / "dl.sqlite")
    store = InfluxV1(InfluxConfig(url=influx_url, database=db, api="v1"))  # type: ignore[arg-type]
    ingest = Ingest(
        store,
        acked.extend,
        clock=lambda: NOW.timestamp(),
        dead=dead,
        verify=verifier.prepare,
        checks=checks,
        clock_tolerance_s=60,
    )
    return ingest, dead


@pytest.mark.parametrize("where", ["inline", "worker"])
def test_good_signatures_are_stored_then_acked_and_a_bad_one_is_a_dead_letter(
    tmp_path: Path, influx: Influx, verifier: Verifier, where: str
) -> None:
    checks: Checks = WorkerChecks() if where == "worker" else InlineChecks()
    acked: list[Message] = []
    ingest, dead = _ingest(influx.url, influx.db, tmp_path, verifier, checks, acked)
    try:
        messages = [_msg(_signed(seq, form=FORMS[seq % 3]), seq) for seq in range(1, 251)]
        messages[17] = _msg(_forged(18), 18)  # among the first hundred, handed over in one frame
        messages[120] = _msg(_forged_as_sent(121), 121)
        messages[230] = _msg(_signed(231, OTHER), 231)  # a key not registered: refused at once
        for m in messages:
            ingest.handle(m)
        assert acked == []  # nothing before the batch is durable
        assert influx.rows('SELECT count("seq") FROM "reading"') == []
        ingest.flush()
    finally:
        checks.close()
    assert sorted(m.mid for m in acked) == list(range(1, 251))  # refused ones too, once kept
    (row,) = influx.rows('SELECT count("seq") FROM "reading"')
    assert row["count"] == 247
    stored = {r["seq"] for r in influx.rows('SELECT "seq" FROM "reading"')}
    assert 18 not in stored and 121 not in stored and 231 not in stored
    assert ingest.stats.rejected == {"bad_signature": 2, "unknown_key": 1}
    bad = [r for r in dead.list() if r.reason == "bad_signature"]
    assert sorted(r.payload for r in bad) == sorted([messages[17].payload, messages[120].payload])
    assert all("does not match key" in r.detail for r in bad)


def test_nothing_is_acked_while_the_store_is_down(
    tmp_path: Path, verifier: Verifier, worker: WorkerChecks
) -> None:
    """The worker's verdicts came back, but the write failed: every message stays unacknowledged
    (the broker redelivers), and the verdicts are not asked for twice."""
    acked: list[Message] = []
    ingest, _ = _ingest("http://127.0.0.1:9", "nowhere", tmp_path, verifier, worker, acked)
    for seq in range(1, 121):
        ingest.handle(_msg(_signed(seq), seq))
    with pytest.raises(StoreError):
        ingest.flush()
    assert acked == []
    assert ingest.pending == 120  # still batched, checked: retried as they are
    with pytest.raises(StoreError):
        ingest.flush()
    assert acked == []


def test_a_worker_killed_mid_batch_costs_only_time(
    tmp_path: Path, influx: Influx, verifier: Verifier, worker: WorkerChecks, caplog: pytest.LogCaptureFixture
) -> None:
    acked: list[Message] = []
    ingest, _ = _ingest(influx.url, influx.db, tmp_path, verifier, worker, acked)
    for seq in range(1, 151):
        ingest.handle(_msg(_signed(seq) if seq != 140 else _forged(seq), seq))
    assert worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)
    with caplog.at_level(logging.ERROR, logger="gateway.trust.checker"):
        for seq in range(151, 201):
            ingest.handle(_msg(_signed(seq), seq))
        ingest.flush()
    assert "signature worker failed" in caplog.text
    assert len(acked) == 200
    (row,) = influx.rows('SELECT count("seq") FROM "reading"')
    assert row["count"] == 199
    assert ingest.stats.rejected == {"bad_signature": 1}


def test_the_worker_answers_each_check_as_libsodium_does(verifier: Verifier) -> None:
    good = [verifier.prepare(parse_reading(TOPIC, _signed(seq))) for seq in (1, 2, 3)]
    bad = verifier.prepare(parse_reading(TOPIC, _forged(4)))
    checks = [c for c in [good[0], bad, good[1], good[2]] if c is not None]
    assert len(checks) == 4
    frame = COUNT.pack(len(checks)) + b"".join(
        HEAD.pack(c.public, c.sig, len(c.message)) + c.message for c in checks
    )
    answers = io.BytesIO()
    serve(io.BytesIO(frame + frame[: len(frame) // 2]), answers)  # a cut frame at the end: no answer
    assert answers.getvalue() == bytes([1, 0, 1, 1])
    assert [c.passes() for c in checks] == [True, False, True, True]


@pytest.mark.parametrize("form", FORMS)
def test_a_check_covers_the_canonical_bytes_and_the_raw_signature(verifier: Verifier, form: str) -> None:
    reading = parse_reading(TOPIC, _signed(5, form=form))
    check = verifier.prepare(reading)
    assert isinstance(check, SignatureCheck)
    assert reading.sig is not None
    assert check.message == canonical_bytes(reading) and check.sig == signature_from_b64(reading.sig)
    assert check.passes()
    changed = reading.model_copy(update={"seq": reading.seq + 1})
    assert not SignatureCheck(check.public, check.sig, changed, check.kid).passes()
