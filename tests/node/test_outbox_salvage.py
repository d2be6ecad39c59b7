"""A damaged outbox is kept aside, what can be read is moved to a fresh one, and `seq` goes on above
every seq the node ever used. The damage is real: bytes of a real outbox overwritten or cut off."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from node.outbox import Outbox
from tests.fakes.clock import FakeClock

AT = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)
TS = "2026-11-22T09:00:00.000Z"


def _outbox(path: Path, readings: int, acked: int = 0, size: int = 300) -> list[tuple[int, bytes]]:
    box = Outbox(path, max_readings=10_000)
    for _ in range(readings):
        box.append(TS, lambda s: f"{s:06d}".encode() + b"p" * size)
    box.remove(list(range(1, acked + 1)))
    waiting = box.pending(limit=100_000)
    box.close()
    return waiting


def test_an_overwritten_header_keeps_the_file_and_recovers_every_reading(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    waiting = _outbox(path, readings=50, acked=20)
    box = Outbox(path, max_readings=10)  # 10: three readings dropped before the damage
    box.append(TS, lambda s: b"x")
    box.close()
    with open(path, "r+b") as f:
        f.write(b"\x00garbage" * 12)
    damaged = path.read_bytes()
    box = Outbox(path, clock=FakeClock(AT))
    kept = tmp_path / "outbox.sqlite.corrupt-20261122T100000Z"
    assert kept.read_bytes() == damaged  # kept exactly as found, for whoever wants to look
    assert box.recovered_from == kept.name
    assert box.pending(limit=1000) == [*waiting[-9:], (51, b"x")]
    assert box.dropped() == 21
    assert box.append(TS, lambda s: b"new") > 51  # above every seq the old file held
    box.close()


def test_missing_pages_are_found_at_start_and_what_reads_is_recovered(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    waiting = _outbox(path, readings=3000)
    size = path.stat().st_size
    with open(path, "r+b") as f:  # the card lost the second half of the file
        f.truncate(size // 2)
    box = Outbox(path, clock=FakeClock(AT))
    assert box.recovered_from is not None
    recovered = box.pending(limit=10_000)
    assert 0 < len(recovered) < 3000
    assert set(recovered) <= set(waiting)  # every recovered reading is a real one, byte for byte
    seq = box.append(TS, lambda s: b"new")
    assert seq > 3000
    box.close()


def test_with_nothing_readable_seq_still_goes_on_from_the_lease(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    _outbox(path, readings=1500, acked=1500)  # all sent: only meta knew the last seq
    path.write_bytes(b"\xa5" * path.stat().st_size)  # every page garbled
    box = Outbox(path, clock=FakeClock(AT))
    assert box.depth() == 0
    assert box.append(TS, lambda s: b"new") > 1500
    assert box.recovered_from == "outbox.sqlite.corrupt-20261122T100000Z"
    box.close()


def test_seq_goes_on_from_the_readings_when_the_lease_is_lost_too(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    _outbox(path, readings=40)
    (tmp_path / "outbox.sqlite.seq").unlink()
    with open(path, "r+b") as f:
        f.write(b"\xff" * 16)
    box = Outbox(path, clock=FakeClock(AT))
    assert box.depth() == 40
    assert box.append(TS, lambda s: b"new") == 41
    box.close()


def test_the_kept_file_is_reported_until_an_operator_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    _outbox(path, readings=5)
    with open(path, "r+b") as f:
        f.write(b"\xff" * 100)
    Outbox(path, clock=FakeClock(AT)).close()
    box = Outbox(path)
    assert box.recovered_from == "outbox.sqlite.corrupt-20261122T100000Z"
    assert box.depth() == 5
    box.close()
    (tmp_path / "outbox.sqlite.corrupt-20261122T100000Z").unlink()
    box = Outbox(path)
    assert box.recovered_from is None
    box.close()


def test_the_copies_made_while_reading_are_never_reported_as_kept(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite"
    _outbox(path, readings=3)
    with open(path, "r+b") as f:
        f.write(b"\xff" * 100)
    Outbox(path, clock=FakeClock(AT)).close()
    kept = "outbox.sqlite.corrupt-20261122T100000Z"
    for left in (".repair", ".repair-template", "-wal"):  # as a power cut in the middle could leave
        (tmp_path / (kept + left)).write_bytes(b"")
    box = Outbox(path)
    assert box.recovered_from == kept
    box.close()
