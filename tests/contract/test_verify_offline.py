"""contract/verify_offline.py, the checker a third party runs alone: it needs nothing of ours, it
agrees with the gateway's own modules, and it decides a retired or revoked key as docs/trust.md says."""

from __future__ import annotations

import ast
import sys
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from contract import csvcell
from contract import verify_offline as vo
from contract.signing import canonical_bytes
from contract.wire import format_ts
from gateway.validate import parse_reading
from tests.contract.test_signing import TOPIC, VEC
from tests.helpers import ROOT

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def test_it_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse((ROOT / "contract" / "verify_offline.py").read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    assert names - set(sys.stdlib_module_names) == {"cryptography"}


def test_the_documented_vector_verifies_from_a_row() -> None:
    reading = parse_reading(TOPIC, VEC["vector-payload"].encode())
    row = {
        "time": format_ts(reading.ts),
        "site": reading.site,
        "node": reading.node,
        "seq": str(reading.seq),
        "period_s": str(reading.period_s),
        "flags": ",".join(f.value for f in reading.flags),
        "sig": reading.sig,
        "kid": reading.kid,
    }
    for metric, mv in reading.metrics.items():
        row[metric.value] = "" if mv.value is None else repr(mv.value)
        row[f"{metric.value}_raw"] = "" if mv.raw is None else repr(mv.raw)
        row[f"{metric.value}_n"] = str(mv.n)
        row[f"{metric.value}_cal"] = mv.cal or ""
    assert vo.canonical_bytes(vo.canonical_doc(row)) == canonical_bytes(reading)
    key = vo.Key(reading.kid or "", "tsagaan", "haul-road", b"", "active", None)
    keys, problems = vo.parse_keys(
        [{"kid": reading.kid, "site": reading.site, "node": reading.node,
          "public_key": VEC["vector-public-key"], "status": "active"}], "keys.json",
    )  # fmt: skip
    assert not problems and key.kid in keys
    assert vo.check_row(row, keys) == (vo.VERIFIED, "")
    assert vo.check_row({**row, "kid": "0" * 16}, keys)[0] == "unknown_key"
    assert vo.check_row({**row, "sig": "", "kid": ""}, keys)[0] == vo.UNSIGNED


@given(st.text(max_size=12))
def test_a_csv_cell_reads_back_as_contract_csvcell_restores_it(text: str) -> None:
    written = csvcell.neutralise(text)
    assert vo.restore_cell(written) == csvcell.restore(written) == text


def test_a_retired_key_vouches_by_signed_time_a_revoked_one_by_stored_time() -> None:
    since = T0 + timedelta(days=10)
    before, after = since - timedelta(hours=1), since + timedelta(hours=1)
    retired = vo.Key("a" * 16, "s", "n", b"", "retired", since)
    revoked = vo.Key("a" * 16, "s", "n", b"", "revoked", since)
    assert retired.trusts(before, after)  # the backlog signed before retirement, stored later
    assert not retired.trusts(after, after)
    assert revoked.trusts(after - timedelta(hours=2), before)  # stored before the compromise
    # signed "before" by a thief, but the gateway stored it after: not evidence
    assert not revoked.trusts(before, after)
    assert revoked.trusts(before, None) and not revoked.trusts(after, None)  # no stored time: ts
    assert vo.Key("a" * 16, "s", "n", b"", "active", None).trusts(after, None)


def test_a_key_whose_id_is_not_its_key_is_named() -> None:
    other = "A" * 43 + "="
    keys, problems = vo.parse_keys(
        [{"kid": "0123456789abcdef", "site": "s", "node": "n", "public_key": other}], "keys.json"
    )
    assert not keys and [p.code for p in problems] == ["key_mismatch"]
