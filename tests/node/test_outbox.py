"""The outbox keeps seq and readings across restarts."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from node.outbox import Outbox
from tests.helpers import fill


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


def test_a_full_outbox_drops_the_oldest_and_counts_them_for_good(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    box = Outbox(path, max_readings=10)
    for _ in range(25):
        box.append("2026-11-22T10:00:00.000Z", lambda s: str(s).encode())
    assert box.depth() == 10
    assert [s for s, _ in box.pending(limit=100)] == list(range(16, 26))
    assert box.dropped() == 15
    box.close()
    box = Outbox(path, max_readings=10)  # the count survives a restart: the loss stays reported
    assert (box.dropped(), box.depth(), box.last_seq()) == (15, 10, 25)
    assert box.append("t", lambda s: b"x") == 26
    assert box.dropped() == 16


def test_low_disk_space_keeps_the_outbox_from_growing(tmp_path: Path) -> None:
    free = {"bytes": 10**9}
    box = Outbox(tmp_path / "o.sqlite", min_free_bytes=100_000_000, free_bytes=lambda p: free["bytes"])
    for _ in range(5):
        box.append("t", lambda s: b"x")
    free["bytes"] = 50_000_000  # the card filled up with something else
    for _ in range(3):
        box.append("t", lambda s: b"x")
    assert box.depth() == 5
    assert box.dropped() == 3
    assert [s for s, _ in box.pending()] == [4, 5, 6, 7, 8]


def test_oldest_and_last_ts_are_remembered(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    assert box.oldest_ts() is None and box.last_ts() is None
    box.append("2026-11-22T10:01:00.000Z", lambda s: b"a")
    box.append("2026-11-22T10:02:00.000Z", lambda s: b"b")
    box.remove([1, 2])
    box.append("2026-11-22T10:03:00.000Z", lambda s: b"c")
    box.close()
    box = Outbox(path)
    assert box.oldest_ts() == "2026-11-22T10:03:00.000Z"
    assert box.last_ts() == "2026-11-22T10:03:00.000Z"
    assert box.depth() == 1


@given(
    ops=st.lists(
        st.one_of(
            st.tuples(st.just("append"), st.integers(1, 5)),
            st.tuples(st.just("ack"), st.integers(1, 5)),
            st.tuples(st.just("reopen"), st.just(0)),
        ),
        max_size=30,
    ),
    limit=st.integers(10, 15),
)
@settings(max_examples=40)
def test_every_seq_is_sent_dropped_or_waiting_exactly_once(
    tmp_path_factory: pytest.TempPathFactory, ops: list[tuple[str, int]], limit: int
) -> None:
    path = tmp_path_factory.mktemp("prop") / "o.sqlite"
    box = Outbox(path, max_readings=limit)
    allocated: list[int] = []
    acked: list[int] = []
    for op, n in ops:
        if op == "append":
            allocated += [box.append("t", lambda s: str(s).encode()) for _ in range(n)]
        elif op == "ack":
            seqs = [s for s, _ in box.pending(limit=n)]
            box.remove(seqs)
            acked += seqs
        else:
            box.close()
            box = Outbox(path, max_readings=limit)
    waiting = [s for s, _ in box.pending(limit=10_000)]
    assert allocated == list(range(1, len(allocated) + 1))  # never reused, never skipped
    assert len(acked) + len(waiting) + box.dropped() == len(allocated)
    assert not set(acked) & set(waiting)
    assert box.depth() == len(waiting) <= limit
    box.close()


def test_a_full_disk_drops_the_oldest_instead_of_stopping_the_node(tmp_path: Path) -> None:
    # SQLite reports a file at its max_page_count with the same SQLITE_FULL as a full SD card.
    box = Outbox(tmp_path / "o.sqlite", max_file_bytes=64 * 1024)
    seqs = [box.append("t", lambda s: b"x" * 1000) for _ in range(300)]
    assert seqs == list(range(1, 301))  # every append succeeded
    assert box.dropped() > 0
    assert box.depth() + box.dropped() == 300
    assert [s for s, _ in box.pending(limit=1000)] == list(range(box.dropped() + 1, 301))


def test_a_really_full_card_drops_the_oldest_counts_them_and_carries_on(small_card: Path) -> None:
    # A real file system filled to the last byte by someone else: no min_free floor saw it coming.
    path = small_card / "outbox.sqlite"
    box = Outbox(path)
    for _ in range(200):
        box.append("2026-11-22T10:00:00.000Z", lambda s: b"x" * 300)
    fill(small_card)
    seqs = [box.append("2026-11-22T10:00:01.000Z", lambda s: b"y" * 300) for _ in range(3000)]
    assert seqs == list(range(201, 3201))  # every append succeeded, no seq skipped
    assert box.dropped() > 0
    assert box.depth() + box.dropped() == 3200
    assert [s for s, _ in box.pending(limit=10_000)] == list(range(box.dropped() + 1, 3201))
    box.remove([3200])  # deleting an acknowledged reading works on the full card too
    assert box.depth() + box.dropped() == 3199
    dropped = box.dropped()
    box.close()
    box = Outbox(path)  # and the node can start again on it
    assert box.append("2026-11-22T10:00:02.000Z", lambda s: b"z" * 300) == 3201
    assert box.dropped() >= dropped
    assert box.pending(after_seq=3199) == [(3201, b"z" * 300)]
    box.close()
