"""The on_stored hooks (the alert engine) see a reading once, even when the broker or the node sends it
again; a node that starts over at seq 1 is not mistaken for a repeat."""

from __future__ import annotations

from pathlib import Path

from gateway.dedup import RecentSeqs


def test_repeats_are_recognised_and_new_readings_pass() -> None:
    seen = RecentSeqs(window=64)
    assert [seen.is_new("s", "n", q, q * 1000) for q in (1, 2, 3)] == [True, True, True]
    assert seen.is_new("s", "n", 2, 2000) is False
    assert seen.is_new("s", "other", 2, 2000) is True
    assert seen.is_new("s", "n", 5, 5000) is True
    assert seen.is_new("s", "n", 4, 4000) is True, "late but never seen"
    assert seen.is_new("s", "n", 4, 4000) is False


def test_a_node_that_starts_over_is_not_a_repeat() -> None:
    seen = RecentSeqs(window=64)
    for q in range(1, 11):
        seen.is_new("s", "n", q, 1_000_000 + q)
    assert seen.is_new("s", "n", 1, 2_000_000) is True, "seq 1 again, but newer: a fresh outbox"
    assert seen.is_new("s", "n", 2, 2_000_001) is True
    assert seen.is_new("s", "n", 2, 2_000_001) is False


def test_bounded_per_node_and_in_nodes() -> None:
    seen = RecentSeqs(window=8, max_nodes=3)
    for q in range(1, 100):
        seen.is_new("s", "n", q, q)
    assert seen.is_new("s", "n", 95, 95) is False
    assert seen.is_new("s", "n", 50, 50) is True, "older than the window: passed through"
    for k in range(5):
        seen.is_new("s", f"m{k}", 1, 1)
    assert seen.is_new("s", "n", 99, 99) is True, "forgotten: only the 3 most recent nodes are kept"


def test_survives_a_restart(tmp_path: Path) -> None:
    seen = RecentSeqs(window=16)
    for q in range(1, 6):
        seen.is_new("s", "n", q, q)
    seen.save(tmp_path / "recent.json")
    again = RecentSeqs(window=16)
    again.load(tmp_path / "recent.json")
    assert again.is_new("s", "n", 3, 3) is False
    assert again.is_new("s", "n", 6, 6) is True
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    fresh = RecentSeqs(window=16)
    fresh.load(broken)
    assert fresh.is_new("s", "n", 3, 3) is True
