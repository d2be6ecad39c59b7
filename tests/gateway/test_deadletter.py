"""The dead-letter store keeps refused messages verbatim, counts them per reason, and stays bounded."""

from __future__ import annotations

from pathlib import Path

from gateway.deadletter import DeadLetters, Reject


def test_rejects_are_kept_verbatim_and_listed_by_time_and_reason(tmp_path: Path) -> None:
    store = DeadLetters(tmp_path / "dl.sqlite")
    store.add(
        [
            Reject(100.0, "mw/v1/a/b/reading", b"\x00\xffgarbage", "not_utf8", "byte 0xff"),
            Reject(200.0, "mw/v1/a/b/reading", b"[]", "not_object", "top level is list"),
        ]
    )
    store.add([Reject(300.0, "mw/v1/a/c/reading", b"{}", "bad_schema_version", "schema None")])
    assert [r.reason for r in store.list()] == ["not_utf8", "not_object", "bad_schema_version"]
    (first,) = store.list(reason="not_utf8")
    assert first.payload == b"\x00\xffgarbage" and first.topic == "mw/v1/a/b/reading" and first.at == 100.0
    assert [r.at for r in store.list(since=150.0)] == [200.0, 300.0]
    store.close()
    again = DeadLetters(tmp_path / "dl.sqlite")  # survives a restart, counts included
    assert again.totals() == {"not_utf8": 1, "not_object": 1, "bad_schema_version": 1}
    again.close()


def test_a_flood_is_bounded_but_still_counted(tmp_path: Path) -> None:
    store = DeadLetters(tmp_path / "dl.sqlite", max_rows=100, max_bytes=1_000_000, max_payload_bytes=4096)
    for batch in range(30):
        store.add([Reject(float(batch), "t", b"x" * 50, "not_json", "flood") for _ in range(100)])
    kept = store.list(limit=10_000)
    assert len(kept) <= 100
    assert kept[-1].at == 29.0, "the newest are kept"
    total, dropped = store.counts()["not_json"]
    assert total == 3000 and dropped == 3000 - len(kept)
    assert store.totals() == {"not_json": 3000}
    store.close()


def test_bytes_bound_and_truncated_bodies(tmp_path: Path) -> None:
    store = DeadLetters(tmp_path / "dl.sqlite", max_rows=10_000, max_bytes=200_000, max_payload_bytes=5000)
    store.add([Reject(1.0, "t", b"y" * 1_000_000, "too_large", "1000000 bytes > 4096")])
    (big,) = store.list()
    assert big.size == 1_000_000 and len(big.payload) == 5000 and big.is_truncated
    for i in range(100):
        store.add([Reject(2.0 + i, "t", b"z" * 4000, "too_large", "big")])
    kept = store.list(limit=10_000)
    assert sum(len(r.payload) for r in kept) <= 200_000
    # trimmed by a tenth of the byte bound at a time, not emptied: the newest 40 or so stay
    assert sum(len(r.payload) for r in kept) >= 150_000 and kept[-1].at == 101.0
    assert store.totals() == {"too_large": 101}
    store.close()
