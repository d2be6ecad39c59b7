"""The outbox keeps seq and readings across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.outbox import Outbox


def test_seq_starts_at_one_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path)
    assert [box.append("t", lambda s: f"r{s}".encode()) for _ in range(3)] == [1, 2, 3]
    box.remove([1, 2, 3])
    box.close()
    box = Outbox(path)
    assert box.append("t", lambda s: f"r{s}".encode()) == 4
    assert box.pending() == [(4, b"r4")]


def test_a_failing_build_allocates_no_seq(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite")

    def explode(seq: int) -> bytes:
        raise ValueError("no")

    with pytest.raises(ValueError):
        box.append("t", explode)
    assert box.append("t", lambda s: b"x") == 1
    assert box.depth() == 1


def test_pending_is_oldest_first_and_paged(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite")
    for _ in range(10):
        box.append("t", lambda s: str(s).encode())
    assert [s for s, _ in box.pending(limit=3)] == [1, 2, 3]
    assert [s for s, _ in box.pending(after_seq=3, limit=3)] == [4, 5, 6]
