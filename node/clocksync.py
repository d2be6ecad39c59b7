"""Is the system clock synchronised? A Raspberry Pi has no real-time clock: it boots with the time it
saved at shutdown (or 1970) and only has the right time once NTP (or GPS) has set it.

The node asks a probe before committing each reading and flags the reading `clock_unsynced` while
the answer is no. Probes are plain callables so tests inject their own.

`adjtimex_synced` asks the kernel directly, the way systemd's `timedatectl` decides
"System clock synchronized": the clock counts as synchronised when the kernel's maximum error
estimate is below 16 s (NTP daemons keep it small; it grows by 500 ppm while nobody disciplines
the clock, and the kernel sets it to 16 s when it has never been synchronised).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import subprocess
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

ClockProbe = Callable[[], bool]

_MAX_ERROR_US = 16_000_000  # systemd src/basic/time-util.c: ntp_synced()


class _Timex(ctypes.Structure):
    # struct timex from <sys/timex.h>: the leading fields we read, then room for the rest (the
    # kernel writes about 200 bytes; the padding is generous for every ABI).
    _fields_ = [
        ("modes", ctypes.c_uint),
        ("offset", ctypes.c_long),
        ("freq", ctypes.c_long),
        ("maxerror", ctypes.c_long),
        ("esterror", ctypes.c_long),
        ("status", ctypes.c_int),
        ("_rest", ctypes.c_char * 512),
    ]


def adjtimex_synced() -> bool:
    """The kernel's view (adjtimex(2) with modes 0 only reads). Raises OSError when unavailable."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    tx = _Timex()
    if libc.adjtimex(ctypes.byref(tx)) < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"adjtimex: {err}")
    return int(tx.maxerror) < _MAX_ERROR_US


def parse_timedatectl(text: str) -> bool:
    """`timedatectl show` prints `NTPSynchronized=yes` among its properties."""
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() == "NTPSynchronized":
            return value.strip() == "yes"
    raise ValueError("timedatectl show printed no NTPSynchronized property")


def timedatectl_synced() -> bool:
    out = subprocess.run(
        ["timedatectl", "show"], capture_output=True, text=True, timeout=10, check=True
    ).stdout
    return parse_timedatectl(out)


def system_probe() -> bool:
    """adjtimex, falling back to timedatectl; a clock nobody can vouch for counts as unsynchronised."""
    for probe in (adjtimex_synced, timedatectl_synced):
        try:
            return probe()
        except (OSError, ValueError, subprocess.SubprocessError):
            continue
    return False


class ClockWatch:
    """Caches a probe (asked at most every `every_s`) and logs each change of state once."""

    def __init__(
        self,
        probe: ClockProbe = system_probe,
        every_s: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe, self._every_s, self._monotonic = probe, every_s, monotonic
        self._asked_at: float | None = None
        self._synced: bool | None = None

    def is_synced(self) -> bool:
        now = self._monotonic()
        if self._asked_at is None or now - self._asked_at >= self._every_s:
            synced = self._probe()
            if synced != self._synced:
                if synced:
                    log.info("system clock is synchronised")
                else:
                    log.warning("system clock is not synchronised; readings are flagged clock_unsynced")
            self._synced, self._asked_at = synced, now
        assert self._synced is not None
        return self._synced
