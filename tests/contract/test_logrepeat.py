"""A line repeated in a loop is logged once per window with its count; other lines pass."""

from __future__ import annotations

import logging

import pytest

from contract.logrepeat import RepeatFilter
from tests.fakes.clock import FakeClock


def _logger(clock: FakeClock, records: list[logging.LogRecord]) -> logging.Logger:
    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep()
    handler.addFilter(RepeatFilter(window_s=60.0, clock=clock))
    log = logging.getLogger(f"test.logrepeat.{id(records)}")
    log.propagate = False
    log.handlers = [handler]
    log.setLevel(logging.DEBUG)
    return log


def test_a_line_repeated_in_a_loop_is_collapsed_with_its_count(clock: FakeClock) -> None:
    records: list[logging.LogRecord] = []
    log = _logger(clock, records)
    for _ in range(10_000):  # as asyncio's accept error came, many times a second
        try:
            raise OSError(24, "Too many open files")
        except OSError:
            log.error("socket.accept() out of system resource", exc_info=True)
        clock.advance(0.001)
    assert len(records) == 1 and records[0].exc_info is not None
    clock.advance(51.0)  # 61 s after the first
    log.error("socket.accept() out of system resource")
    assert len(records) == 2
    assert records[1].getMessage() == "socket.accept() out of system resource [repeated 9999 times in 61 s]"
    clock.advance(1.0)  # a new window opened with that line: this one is held back again
    log.error("socket.accept() out of system resource")
    assert len(records) == 2


def test_different_lines_and_levels_never_hold_each_other_back(clock: FakeClock) -> None:
    records: list[logging.LogRecord] = []
    log = _logger(clock, records)
    for seq in range(100):
        log.debug("stored tsagaan/haul-road seq=%d", seq)  # same call, different text: all kept
    log.warning("broker away")
    log.error("broker away")
    log.warning("broker away")
    assert [r.getMessage() for r in records[-2:]] == ["broker away", "broker away"]
    assert len(records) == 102


def test_after_a_quiet_window_the_line_passes_without_a_count(clock: FakeClock) -> None:
    records: list[logging.LogRecord] = []
    log = _logger(clock, records)
    log.warning("disk %d%% full", 91)
    clock.advance(120.0)
    log.warning("disk %d%% full", 91)
    assert [r.getMessage() for r in records] == ["disk 91% full", "disk 91% full"]


@pytest.mark.parametrize("lines", [1001, 5000])
def test_the_oldest_line_is_forgotten_beyond_the_lines_remembered(clock: FakeClock, lines: int) -> None:
    records: list[logging.LogRecord] = []
    log = _logger(clock, records)
    for n in range(lines):
        log.info("line %d", n)
    log.info("line 0")  # forgotten long ago: passes again at once
    assert len(records) == lines + 1
