"""Collapse a log line repeated in a loop into one line per window and a count.

A fault that repeats many times a second (asyncio's "socket.accept() out of system resource" with
its traceback, under a flood of connections) once wrote 377 MB of log in 75 s: on a Pi that fills
the SD card, and in journald it pushes out the lines that say what went wrong first. The first line
of a run passes; the same line again (same logger, level and text) within `window_s` is only
counted; the first one after the window passes with how many were held back, and opens the next
window. Different lines never hold each other back.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from datetime import datetime

from contract.clock import Clock, utc_now

DEFAULT_WINDOW_S = 60.0
MAX_LINES = 1000  # distinct lines remembered; the oldest is forgotten first


class RepeatFilter(logging.Filter):
    def __init__(self, window_s: float = DEFAULT_WINDOW_S, clock: Clock = utc_now) -> None:
        super().__init__()
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()  # handlers call filters outside their own lock
        # (logger, level, text) -> [when the window opened, lines held back in it]
        self._seen: OrderedDict[tuple[str, int, str], tuple[datetime, int]] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        key = (record.name, record.levelno, text)
        now = self._clock()
        with self._lock:
            seen = self._seen.get(key)
            if seen is not None and (now - seen[0]).total_seconds() < self._window_s:
                self._seen[key] = (seen[0], seen[1] + 1)
                return False
            self._seen[key] = (now, 0)
            self._seen.move_to_end(key)
            if len(self._seen) > MAX_LINES:
                self._seen.popitem(last=False)
        if seen is not None and seen[1]:
            elapsed = (now - seen[0]).total_seconds()
            record.msg, record.args = f"{text} [repeated {seen[1]} times in {elapsed:.0f} s]", None
        return True
