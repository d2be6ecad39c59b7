"""Rolling means on reading time, with the completeness rule regulators use.

A `Series` holds one metric of one node keyed by the reading's timestamp, so a redelivered or
replayed reading (same node, same `ts`) replaces itself instead of counting twice. A mean over a
window counts only when the window holds at least `min_completeness` of the readings it should
(window length / the node's reading period), the usual 75 % rule; otherwise it is `None` and the
completeness says why.
"""

from __future__ import annotations

import bisect
import statistics
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WindowMean:
    value: float | None  # None: not enough data (see completeness)
    completeness: float  # valid readings / expected readings, 0..1
    n: int


class Series:
    def __init__(self, keep_ms: int) -> None:
        self._keep_ms = keep_ms
        self._ts: list[int] = []
        self._values: list[float | None] = []
        self._period_ms = 60_000

    def __len__(self) -> int:
        return len(self._ts)

    @property
    def latest_ms(self) -> int | None:
        return self._ts[-1] if self._ts else None

    def add(self, ts_ms: int, value: float | None, period_s: int | None = None) -> bool:
        """Insert one value; False when this timestamp was already there (a duplicate)."""
        if period_s:
            self._period_ms = period_s * 1000
        i = bisect.bisect_left(self._ts, ts_ms)
        if i < len(self._ts) and self._ts[i] == ts_ms:
            self._values[i] = value  # the same reading again: same value, counted once
            return False
        self._ts.insert(i, ts_ms)
        self._values.insert(i, value)
        if self._ts[0] < self._ts[-1] - self._keep_ms:
            cut = bisect.bisect_left(self._ts, self._ts[-1] - self._keep_ms)
            del self._ts[:cut], self._values[:cut]
        return True

    def infer_period(self) -> None:
        """After a rebuild from the database (which does not store `period_s`): the usual spacing."""
        if len(self._ts) >= 3:
            gaps = [b - a for a, b in zip(self._ts, self._ts[1:], strict=False)]
            self._period_ms = max(int(statistics.median(gaps)), 1000)

    def value_at(self, ts_ms: int) -> float | None:
        i = bisect.bisect_left(self._ts, ts_ms)
        if i < len(self._ts) and self._ts[i] == ts_ms:
            return self._values[i]
        return None

    def latest_before(self, ts_ms: int, max_age_ms: int) -> float | None:
        """The last valid value at or before `ts_ms`, not older than `max_age_ms`."""
        i = bisect.bisect_right(self._ts, ts_ms) - 1
        while i >= 0 and self._ts[i] > ts_ms - max_age_ms:
            if self._values[i] is not None:
                return self._values[i]
            i -= 1
        return None

    def mean(self, end_ms: int, duration_ms: int, min_completeness: float) -> WindowMean:
        """Mean of the readings whose `ts` lies in (end - duration, end]."""
        lo = bisect.bisect_right(self._ts, end_ms - duration_ms)
        hi = bisect.bisect_right(self._ts, end_ms)
        valid = [v for v in self._values[lo:hi] if v is not None]
        expected = max(duration_ms / self._period_ms, 1.0)
        completeness = min(len(valid) / expected, 1.0)
        if not valid or completeness + 1e-9 < min_completeness:
            return WindowMean(None, completeness, len(valid))
        return WindowMean(sum(valid) / len(valid), completeness, len(valid))
