"""Canonical form and Ed25519 signatures against the test vector written in docs/protocol.md, and the
gateway's signature policy against a real key registry directory."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.flags import Flag
from contract.signing import Signer, canonical_bytes, public_b64, signed_wire, verify_signature
from contract.wire import PayloadError, ReadingPayload
from gateway.trust.registry import KeyRecord, KeyRegistry, KeyStatus, save
from gateway.trust.reverify import reverify
from gateway.trust.verifier import RequireSignatures, Verifier
from gateway.validate import parse_reading
from tests.helpers import ROOT

TOPIC = "minewatch/v1/tsagaan/haul-road/reading"


def _vectors() -> dict[str, str]:
    text = (ROOT / "docs" / "protocol.md").read_text(encoding="utf-8")
    return {m[1]: m[2] for m in re.finditer(r"```\w+ (vector-[a-z-]+)\n(.*?)\n```", text, re.S)}


VEC = _vectors()
SIGNER = Signer.from_seed(bytes.fromhex(VEC["vector-seed"]))


def test_the_documented_vector_is_reproduced_exactly() -> None:
    assert public_b64(SIGNER.private.public_key()) == VEC["vector-public-key"]
    assert SIGNER.kid == VEC["vector-kid"]
    reading = parse_reading(TOPIC, VEC["vector-payload"].encode())
    assert canonical_bytes(reading) == VEC["vector-canonical"].encode("utf-8")
    assert reading.sig == VEC["vector-sig"]
    unsigned = reading.model_copy(update={"sig": None, "kid": None})
    resigned = SIGNER.sign(unsigned)
    assert resigned.sig == VEC["vector-sig"]  # Ed25519 is deterministic
    assert resigned.to_wire() == VEC["vector-payload"].encode("utf-8")
    assert verify_signature(SIGNER.private.public_key(), reading)


def test_a_node_sends_the_canonical_form_with_sig_last(tmp_path: Path) -> None:
    sent = VEC["vector-signed-wire"].encode("utf-8")
    unsigned = parse_reading(TOPIC, VEC["vector-payload"].encode()).model_copy(
        update={"sig": None, "kid": None}
    )
    assert SIGNER.sign_wire(unsigned) == sent
    reading = parse_reading(TOPIC, sent)
    assert reading == parse_reading(TOPIC, VEC["vector-payload"].encode())  # the same values
    verifier = Verifier(_registry(tmp_path, _record(SIGNER)))
    check = verifier.prepare(reading)
    assert check is not None and check.message == VEC["vector-canonical"].encode("utf-8")
    assert check.passes()


def _respelt(kind: str) -> bytes:
    """The vector reading in another spelling than the node's: each is valid and verifies."""
    sent = VEC["vector-signed-wire"]
    sig = VEC["vector-sig"]
    if kind == "published":  # the contract's field order (earlier nodes, other clients)
        return VEC["vector-payload"].encode()
    if kind == "spaced":  # canonical order, json.dumps' default separators
        return json.dumps(json.loads(sent), ensure_ascii=False).encode()
    if kind == "one-space":  # the node's bytes but one space: starts and ends as the node's do
        return sent.replace('"seq":7', '"seq": 7').encode()
    if kind == "whole-int":  # 12.0 sent as 12: the same float
        return sent.replace('"raw":12.0', '"raw":12').encode()
    if kind == "escaped":  # non-ASCII escaped: the same string
        return sent.replace("ö", "\\u00f6").encode()
    if kind == "sig-first":  # sig anywhere but last
        return sent.replace(f',"sig":"{sig}"', "").replace('{"flags"', f'{{"sig":"{sig}","flags"', 1).encode()
    if kind == "newline":  # a trailing newline
        return (sent + "\n").encode()
    raise AssertionError(kind)


RESPELT = ["published", "spaced", "one-space", "whole-int", "escaped", "sig-first", "newline"]


@pytest.mark.parametrize("kind", RESPELT)
def test_any_other_spelling_falls_back_to_the_rebuilt_canonical_form(tmp_path: Path, kind: str) -> None:
    payload = _respelt(kind)
    assert payload != VEC["vector-signed-wire"].encode()
    reading = parse_reading(TOPIC, payload)
    verifier = Verifier(_registry(tmp_path, _record(SIGNER)))
    check = verifier.prepare(reading)
    assert check is not None and check.passes()
    verifier(reading)  # accepted
    assert check.message == VEC["vector-canonical"].encode()  # always the form rebuilt from the values


@pytest.mark.parametrize("kind", RESPELT)
def test_a_value_changed_in_any_spelling_is_refused(tmp_path: Path, kind: str) -> None:
    """Tampered in the node's form or in another: refused, whichever bytes were tried first."""
    verifier = Verifier(_registry(tmp_path, _record(SIGNER)))
    for payload in (_respelt(kind), VEC["vector-signed-wire"].encode()):
        forged = payload.replace(b'"seq":7', b'"seq":8').replace(b'"seq": 7', b'"seq": 8')
        assert forged != payload
        with pytest.raises(PayloadError) as info:
            verifier(parse_reading(TOPIC, forged))
        assert info.value.reason == "bad_signature"


def test_bytes_signed_that_are_not_the_canonical_form_are_refused(tmp_path: Path) -> None:
    """A key holder that signs another spelling (one space, an escaped letter) and sends it with
    its `sig` last: the signature is good over the bytes that came, but no verifier could
    reproduce them from the stored values, so the gateway refuses it (it checks the rebuilt form)."""
    verifier = Verifier(_registry(tmp_path, _record(SIGNER)))
    canonical = VEC["vector-canonical"]
    for other in (canonical.replace('"seq":7', '"seq": 7'), canonical.replace("ö", "\\u00f6")):
        signed = other.encode()
        sig = base64.b64encode(SIGNER.private.sign(signed)).decode("ascii")
        sent = signed_wire(signed, sig)
        reading = parse_reading(TOPIC, sent)
        assert canonical_bytes(reading) == canonical.encode()  # the same values
        with pytest.raises(PayloadError) as info:
            verifier(reading)
        assert info.value.reason == "bad_signature"


def _registry(tmp: Path, *records: KeyRecord) -> KeyRegistry:
    for record in records:
        save(tmp, record)
    return KeyRegistry(tmp)


def _record(signer: Signer, status: KeyStatus = KeyStatus.ACTIVE, since: datetime | None = None) -> KeyRecord:
    return KeyRecord(
        kid=signer.kid,
        site="tsagaan",
        node="haul-road",
        public_key=public_b64(signer.private.public_key()),
        created=datetime(2026, 1, 1, tzinfo=UTC),
        status=status,
        since=since,
    )


def _check(verifier: Verifier, payload: bytes, topic: str = TOPIC) -> None:
    verifier(parse_reading(topic, payload))


@pytest.mark.parametrize("vector", ["vector-payload", "vector-signed-wire"])
def test_one_flipped_bit_anywhere_is_refused(tmp_path: Path, vector: str) -> None:
    """Every single-bit change (low bit and case bit of each byte) is refused, unless it only
    respells the same value (`1e-05` as `1E-05`): the signature covers values, not spelling. In
    the node's own form too, where the check is first made over the bytes as they came."""
    verifier = Verifier(_registry(tmp_path, _record(SIGNER)))
    payload = VEC[vector].encode("utf-8")
    original = canonical_bytes(parse_reading(TOPIC, payload))
    _check(verifier, payload)  # the original is accepted
    respelt = 0
    for i in range(len(payload)):
        for bit in (0x01, 0x20):
            forged = payload[:i] + bytes([payload[i] ^ bit]) + payload[i + 1 :]
            try:
                _check(verifier, forged)
            except PayloadError:
                continue
            assert canonical_bytes(parse_reading(TOPIC, forged)) == original, forged
            respelt += 1
    assert respelt == 2  # the two exponents' `e`


def test_the_signature_only_verifies_in_its_canonical_base64(tmp_path: Path) -> None:
    verifier = Verifier(_registry(tmp_path, _record(SIGNER)))
    sig = VEC["vector-sig"]
    # the last character before "==" carries 4 padding bits: another spelling, same bytes
    alias = sig[:85] + chr(ord(sig[85]) + 1) + "=="
    assert base64.b64decode(alias) == base64.b64decode(sig)
    forged = VEC["vector-payload"].replace(sig, alias).encode()
    with pytest.raises(PayloadError) as info:
        _check(verifier, forged)
    assert info.value.reason in {"bad_signature", "invalid"}


def _reading(signer: Signer | None, ts: datetime, seq: int = 1, node: str = "haul-road") -> bytes:
    reading = ReadingPayload.model_validate(
        {
            "schema": 1,
            "site": "tsagaan",
            "node": node,
            "seq": seq,
            "ts": ts,
            "period_s": 60,
            "metrics": {"pm2_5": {"value": 10.5, "raw": 11.0, "n": 60}},
            "flags": [],
        }
    )
    return (signer.sign(reading) if signer else reading).to_wire()


T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ("unsigned", "unsigned"),
        ("unknown", "unknown_key"),
        ("revoked", "revoked_key"),
        ("retired-after", "revoked_key"),
        ("other-node", "unknown_key"),
        ("sig-without-kid", "bad_signature"),
    ],
)
def test_refusals_carry_their_reason(tmp_path: Path, case: str, reason: str) -> None:
    good, other = Signer.from_seed(b"\x01" * 32), Signer.from_seed(b"\x02" * 32)
    records = [_record(good)]
    payload = _reading(good, T0)
    topic = TOPIC
    if case == "unsigned":
        payload = _reading(None, T0)
    elif case == "unknown":
        payload = _reading(other, T0)
    elif case == "revoked":
        records = [_record(good, KeyStatus.REVOKED, T0 + timedelta(days=1))]
    elif case == "retired-after":
        records = [_record(good, KeyStatus.RETIRED, T0 - timedelta(seconds=1))]
    elif case == "other-node":
        payload = _reading(good, T0, node="river-up")
        topic = "minewatch/v1/tsagaan/river-up/reading"
    elif case == "sig-without-kid":
        payload = payload.replace(f',"kid":"{good.kid}"'.encode(), b"")
    verifier = Verifier(_registry(tmp_path, *records))
    with pytest.raises(PayloadError) as info:
        _check(verifier, payload, topic)
    assert info.value.reason == reason


def test_policy_decides_who_must_sign(tmp_path: Path) -> None:
    key = Signer.from_seed(b"\x01" * 32)
    registry = _registry(tmp_path, _record(key))
    unsigned_other = _reading(None, T0, node="river-up")
    # auto: river-up never had a key, so it may still send unsigned readings; haul-road may not
    _check(Verifier(registry), unsigned_other, "minewatch/v1/tsagaan/river-up/reading")
    with pytest.raises(PayloadError):
        _check(Verifier(registry), _reading(None, T0))
    with pytest.raises(PayloadError):
        _check(
            Verifier(registry, RequireSignatures.ALWAYS),
            unsigned_other,
            "minewatch/v1/tsagaan/river-up/reading",
        )
    _check(Verifier(registry, RequireSignatures.NEVER), _reading(None, T0))
    # a retired key still verifies what it signed before the rotation
    retired = _registry(tmp_path / "r", _record(key, KeyStatus.RETIRED, T0 + timedelta(hours=1)))
    _check(Verifier(retired), _reading(key, T0))


def test_a_revocation_on_disk_takes_effect_without_a_restart(tmp_path: Path) -> None:
    key = Signer.from_seed(b"\x01" * 32)
    now = [0.0]
    save(tmp_path, _record(key))
    registry = KeyRegistry(tmp_path, check_every_s=1.0, monotonic=lambda: now[0])
    verifier = Verifier(registry)
    _check(verifier, _reading(key, T0, seq=1))
    save(tmp_path, _record(key, KeyStatus.REVOKED, T0))
    now[0] += 1.5  # the next look at the directory
    with pytest.raises(PayloadError) as info:
        _check(verifier, _reading(key, T0, seq=2))
    assert info.value.reason == "revoked_key"


_finite = st.floats(min_value=0, max_value=10_000, allow_nan=False, allow_infinity=False)
_metric = st.fixed_dictionaries(
    {"value": st.none() | _finite, "n": st.integers(0, 1_000_000)},
    optional={
        "raw": _finite,
        "cal": st.builds(  # a letter or digit first, as the contract wants (no spreadsheet formula)
            str.__add__,
            st.characters(categories=("L", "Nd")),
            st.text(st.characters(blacklist_categories=("Z", "C")), max_size=19),
        ),
    },
)
_readings = st.fixed_dictionaries(
    {
        "schema": st.just(1),
        "site": st.just("tsagaan"),
        "node": st.just("haul-road"),
        "seq": st.integers(1, 2**53),
        "ts": st.datetimes(datetime(2020, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
        "period_s": st.integers(1, 86_400),
        "metrics": st.dictionaries(
            st.sampled_from(["pm2_5", "pm10", "turbidity", "pressure"]), _metric, min_size=1
        ),
        "flags": st.lists(st.sampled_from([f.value for f in Flag]), unique=True),
    }
)


@pytest.fixture(scope="module")
def vector_registry(tmp_path_factory: pytest.TempPathFactory) -> KeyRegistry:
    return _registry(tmp_path_factory.mktemp("keys"), _record(SIGNER))


@settings(max_examples=60)  # each example signs and verifies three times
@given(doc=_readings)
def test_any_signed_reading_verifies_from_the_wire_and_from_a_stored_row(
    vector_registry: KeyRegistry, doc: dict[str, Any]
) -> None:
    for name, mv in doc["metrics"].items():  # keep pressure in its physical range
        if name == "pressure" and mv["value"] is not None:
            mv["value"] = 300 + mv["value"] / 100
    signed = SIGNER.sign(ReadingPayload.model_validate(doc))
    registry = vector_registry
    verifier = Verifier(registry)
    wire = parse_reading(TOPIC, signed.to_wire())
    verifier(wire)
    # As a node sends it: the canonical form with `sig` last, the same values and signature
    sent = SIGNER.sign_wire(ReadingPayload.model_validate(doc))
    parsed = parse_reading(TOPIC, sent)
    assert parsed == wire and parsed.sig is not None
    assert sent == signed_wire(canonical_bytes(parsed), parsed.sig)
    verifier(parsed)
    # whole floats sent as integers (another implementation's JSON) sign the same canonical bytes
    respelt = json.loads(
        signed.to_wire(), parse_float=lambda t: int(float(t)) if float(t).is_integer() else float(t)
    )
    assert canonical_bytes(parse_reading(TOPIC, json.dumps(respelt).encode())) == canonical_bytes(wire)
    row: dict[str, Any] = {
        "time": (wire.ts - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1),
        "site": wire.site,
        "node": wire.node,
        "seq": wire.seq,
        "period_s": wire.period_s,
        "flags": ",".join(f.value for f in wire.flags),
        "sig": wire.sig,
        "kid": wire.kid,
        "signed": True,
    }
    for metric, mv in wire.metrics.items():
        row.update({metric.value: mv.value, f"{metric.value}_raw": mv.raw, f"{metric.value}_n": mv.n})
        row[f"{metric.value}_cal"] = mv.cal
    assert reverify([row], registry).exit_status() == 0
    # the same row without its signature: counted as unsigned, with an exit status of its own
    unsigned = {k: v for k, v in row.items() if k not in ("sig", "kid", "signed")}
    report = reverify([row, unsigned], registry)
    assert report.outcomes == {"verified": 1, "unsigned": 1} and report.exit_status() == 3
    assert not report.problems  # counted, not listed as a failure
    assert reverify([], registry).exit_status() == 1  # nothing to check proves nothing


def test_sighup_rereads_at_once_however_long_the_watch_interval(tmp_path: Path) -> None:
    key = Signer.from_seed(b"\x01" * 32)
    save(tmp_path, _record(key))
    registry = KeyRegistry(tmp_path, check_every_s=1e9)
    save(tmp_path, _record(key, KeyStatus.REVOKED, T0))
    assert not registry.refresh()  # not looking again for a very long time...
    registry.request_reload()  # ...until the signal handler asks
    assert registry.refresh()
    record = registry.get(key.kid)
    assert record is not None and record.status is KeyStatus.REVOKED


def test_a_broken_key_file_keeps_the_previous_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    key = Signer.from_seed(b"\x01" * 32)
    save(tmp_path, _record(key))
    now = [0.0]
    verifier = Verifier(KeyRegistry(tmp_path, monotonic=lambda: now[0]))
    (tmp_path / f"{key.kid}.json").write_text("{half a record")
    for seq in (1, 2, 3):
        now[0] += 1.5
        _check(verifier, _reading(key, T0, seq=seq))  # still verified with the key read before
    assert sum("key registry not reloaded" in r.message for r in caplog.records) == 1
