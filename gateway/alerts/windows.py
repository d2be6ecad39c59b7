"""Rolling means on reading time, with the completeness rule regulators use.

A `Series` holds one metric of one node keyed by the reading's timestamp, so a redelivered or
replayed reading (same node, same `ts`) replaces itself instead of counting twice. Means come from
prefix sums kept in exact integers (values in units of 2^-40), so a 24-hour mean costs two bisections
rather than a pass over 1,440 readings per reading (bench/ingest.py profiled that as most of the
engine's time), and the sum has no rounding error to drift with. A mean over a
window counts only when the window holds at least `min_completeness` of the readings it should
(window length / the node's reading period), the usual 75 % rule; otherwise it is `None` and the
completeness says why.
"""

from __future__ import annotations

import bisect
import math
import operator
import statistics
from array import array
from collections.abc import Iterable
from itertools import accumulate, islice
from typing import Any, NamedTuple, cast

HOUR_MS = 3_600_000
NOWCAST_HOURS = 12


class WindowMean(NamedTuple):  # a tuple, not a frozen dataclass: built several times per reading
    value: float | None  # None: not enough data (see completeness)
    completeness: float  # valid readings / expected readings, 0..1
    n: int


# Prefix sums count in units of 2^-40: scaling a float by a power of two is exact, so the only
# rounding is each value to the nearest 2^-40 (under 5e-13), and the integer sums never drift.
_SCALE = 2**40
_FSCALE = float(_SCALE)
_NAN = math.nan


def _wrap(x: int) -> int:
    """x modulo 2^64, as a signed 64-bit integer (what an array("q") holds)."""
    return ((x + 2**63) & (2**64 - 1)) - 2**63


class Series:
    def __init__(self, keep_ms: int) -> None:
        self._keep_ms = keep_ms
        # Machine-typed arrays rather than lists: 8 bytes an entry instead of a pointer and an
        # object (a day of one-minute readings took about 250 KB a window, now about 110 KB).
        # A reading without a value is NaN in `_values` (a stored value is always finite).
        self._ts = array("q")
        self._values = array("d")
        # _sum[i] / _count[i]: scaled sum and number of valid values before index i (one longer
        # than _ts). Only differences are used, so trimming the front needs no rebasing. The sums
        # are kept modulo 2^64 in a machine array (8 bytes an entry; Python integers took 36 and a
        # pointer, a third of a thousand-node gateway's memory): a difference taken modulo 2^64 is
        # the exact window sum whenever that sum is below 2^63 in magnitude, which `_exact` checks
        # from the largest value seen. `_count` is made only once a reading without a value comes:
        # until then the count before index i is i.
        self._sum = array("q", [0])
        self._count: array[int] | None = None
        self._max_abs = 0  # the largest |scaled value| added: bounds a window's sum
        self._period_ms = 60_000
        self._period_s: int | None = None  # the period_s that set _period_ms; None when inferred
        # Trimming the front of the lists moves every element, so it waits until the oldest
        # readings are this much older than needed, and then drops them all at once.
        # (typed arrays move fast: a twentieth of the window, at least ten minutes, is enough)
        self._slack_ms = max(keep_ms // 20, 600_000)
        # The NowCast's 12 hourly means change only when an hour closes or history is edited (a
        # late or replaced reading): `_edits` counts the changes that are not in-order appends.
        self._edits = 0
        self._hourly_key: tuple[int, float, int, int] | None = None
        self._hourly: tuple[float | None, ...] = ()

    def to_parts(self) -> tuple[dict[str, Any], list[memoryview]]:
        """What gateway/alerts/snapshot.py writes: the settings, then views of the arrays' bytes
        (not copies: a thousand nodes' windows are about 70 MB). Write them before the series
        changes again: an array cannot grow while a view of it is alive."""
        meta = {
            "keep_ms": self._keep_ms,
            "period_ms": self._period_ms,
            "period_s": self._period_s,
            "max_abs": self._max_abs,
            "n": len(self._ts),
            "counted": self._count is not None,
        }
        parts = [memoryview(self._ts), memoryview(self._values), memoryview(self._sum)]
        if self._count is not None:
            parts.append(memoryview(self._count))
        return meta, parts

    @classmethod
    def from_parts(cls, meta: dict[str, Any], data: memoryview, offset: int) -> tuple[Series, int]:
        """The series `to_parts` wrote at `offset` in `data`, and the offset after it."""
        series = cls(int(meta["keep_ms"]))
        n = int(meta["n"])
        series._sum = array("q")
        series._count = array("q") if meta["counted"] else None
        arrays: list[tuple[array[Any], int]] = [(series._ts, n), (series._values, n), (series._sum, n + 1)]
        if series._count is not None:
            arrays.append((series._count, n + 1))
        for target, length in arrays:
            end = offset + length * target.itemsize
            if end > len(data):
                raise ValueError("truncated")
            target.frombytes(data[offset:end])
            offset = end
        series._period_ms, series._period_s = int(meta["period_ms"]), meta["period_s"]
        series._max_abs = int(meta["max_abs"])
        return series, offset

    def __len__(self) -> int:
        return len(self._ts)

    @property
    def latest_ms(self) -> int | None:
        return self._ts[-1] if self._ts else None

    def add(self, ts_ms: int, value: float | None, period_s: int | None = None) -> bool:
        """Insert one value; False when this timestamp was already there (a duplicate)."""
        if period_s and period_s != self._period_s:
            self._period_s, self._period_ms = period_s, period_s * 1000
        ts = self._ts
        if ts and ts_ms <= ts[-1]:
            i = bisect.bisect_left(ts, ts_ms)
            stored = _NAN if value is None else value
            if ts[i] == ts_ms:
                old = self._values[i]
                if old != stored and not (old != old and stored != stored):  # NaN: no value, twice
                    if value is None:
                        self._counts()
                    self._values[i] = stored  # the same reading again: counted once
                    self._edits += 1
                    self._resum(i)
                return False
            # a late reading: the sums after it shift
            if value is None:
                self._counts()  # (before the insert: it counts the values there are)
            self._edits += 1
            ts.insert(i, ts_ms)
            self._values.insert(i, stored)
            self._sum.insert(i + 1, 0)
            if self._count is not None:
                self._count.insert(i + 1, 0)
            self._resum(i)
        else:  # the usual case: readings arrive in order
            ts.append(ts_ms)
            if value is None:
                count = self._counts()  # (before the append: it counts the values there are)
                self._values.append(_NAN)
                self._sum.append(self._sum[-1])
                count.append(count[-1])
            else:
                self._values.append(value)
                scaled = round(value * _SCALE)
                self._max_abs = max(self._max_abs, abs(scaled))
                self._sum.append(_wrap(self._sum[-1] + scaled))
                if self._count is not None:
                    self._count.append(self._count[-1] + 1)
        if ts[0] < ts[-1] - self._keep_ms - self._slack_ms:
            cut = bisect.bisect_left(ts, ts[-1] - self._keep_ms)
            del ts[:cut], self._values[:cut], self._sum[:cut]
            if self._count is not None:
                del self._count[:cut]
        return True

    def extend(self, ts_ms: list[int], values: list[float | None]) -> None:
        """Add many readings at once (a restart's reload): in one pass of C loops when they come in
        order after the newest one held, else one by one with `add`."""
        ts = self._ts
        if not ts_ms:
            return
        # (the order checked in C: a generator over pairs was a third of a first start's extends)
        if (ts and ts_ms[0] <= ts[-1]) or not all(map(operator.lt, ts_ms, islice(ts_ms, 1, None))):
            for t, v in zip(ts_ms, values, strict=True):
                self.add(t, v)
            return
        has_null = None in values
        if has_null:
            count = self._counts()  # (before the extend: it counts the values there are)
            count.extend(accumulate((v is not None for v in values), initial=count[-1]))
            del count[-len(values) - 1]
        present: Iterable[float] = cast("list[float]", values)  # when there is no null
        if has_null:
            scaled = [0 if v is None else round(v * _SCALE) for v in values]
            present = (_NAN if v is None else v for v in values)
        else:  # (in C loops: scaling by a power of two is exact for any value a reading holds)
            scaled = list(map(round, map(_FSCALE.__mul__, present)))
        self._max_abs = max(self._max_abs, max(scaled), -min(scaled))
        sums = list(accumulate(scaled, initial=self._sum[-1]))[1:]
        if max(sums) >= 2**63 or min(sums) < -(2**63):
            sums = [_wrap(x) for x in sums]
        ts.extend(ts_ms)
        self._values.extend(present)
        self._sum.extend(sums)
        known = self._count
        if known is not None and not has_null:
            known.extend(range(known[-1] + 1, known[-1] + 1 + len(values)))
        if ts[0] < ts[-1] - self._keep_ms - self._slack_ms:
            cut = bisect.bisect_left(ts, ts[-1] - self._keep_ms)
            del ts[:cut], self._values[:cut], self._sum[:cut]
            if self._count is not None:
                del self._count[:cut]

    def discard(self, ts_ms: int) -> bool:
        """Take out the reading at `ts_ms`; False when there is none. The alerts' first start
        takes out a reading it will be handed again (gateway/alerts/engine.py, `fill`)."""
        ts = self._ts
        i = bisect.bisect_left(ts, ts_ms)
        if i == len(ts) or ts[i] != ts_ms:
            return False
        self._edits += 1
        del ts[i], self._values[i], self._sum[i + 1]
        if self._count is not None:
            del self._count[i + 1]
        self._resum(i)
        return True

    def _counts(self) -> array[int]:
        """The count of valid values before each index, made when the first null comes."""
        if self._count is None:
            self._count = array("q", range(len(self._sum)))
        return self._count

    def _n(self, lo: int, hi: int) -> int:
        return hi - lo if self._count is None else self._count[hi] - self._count[lo]

    def _window_sum(self, lo: int, hi: int, n: int) -> int:
        """The scaled sum of the values in [lo, hi), exact: from the prefix sums when it cannot
        have wrapped, else added up (a long window of values near the range's top)."""
        if n * self._max_abs < 2**63:
            return _wrap(self._sum[hi] - self._sum[lo])
        return sum(round(v * _SCALE) for v in self._values[lo:hi] if v == v)

    def _resum(self, start: int) -> None:
        """Recompute the prefix sums from index `start` on."""
        count = self._count
        for j in range(start, len(self._ts)):
            value = self._values[j]
            valid = not math.isnan(value)
            scaled = round(value * _SCALE) if valid else 0
            self._max_abs = max(self._max_abs, abs(scaled))
            self._sum[j + 1] = _wrap(self._sum[j] + scaled)
            if count is not None:
                count[j + 1] = count[j] + valid

    def infer_period(self) -> None:
        """After a rebuild from the database (which does not store `period_s`): the usual spacing."""
        if len(self._ts) >= 3:
            gaps = list(map(operator.sub, islice(self._ts, 1, None), self._ts))
            self._period_s, self._period_ms = None, max(int(statistics.median(gaps)), 1000)

    def value_at(self, ts_ms: int) -> float | None:
        if not self._ts or ts_ms < self._ts[-1] - self._keep_ms:
            return None  # waits in the slack for the next trim: as good as gone
        i = bisect.bisect_left(self._ts, ts_ms)
        if i < len(self._ts) and self._ts[i] == ts_ms:
            value = self._values[i]
            return None if math.isnan(value) else value
        return None

    def latest_before(self, ts_ms: int, max_age_ms: int) -> float | None:
        """The last valid value at or before `ts_ms`, not older than `max_age_ms`."""
        if not self._ts:
            return None
        oldest = max(ts_ms - max_age_ms, self._ts[-1] - self._keep_ms - 1)  # not into the slack
        i = bisect.bisect_right(self._ts, ts_ms) - 1
        while i >= 0 and self._ts[i] > oldest:
            value = self._values[i]
            if not math.isnan(value):
                return value
            i -= 1
        return None

    def mean(self, end_ms: int, duration_ms: int, min_completeness: float) -> WindowMean:
        """Mean of the readings whose `ts` lies in (end - duration, end], within `keep_ms` of the newest."""
        ts = self._ts
        if not ts:
            return WindowMean(None, 0.0, 0)
        # readings older than keep_ms wait in the slack for the next trim: a window never sees them
        lo = bisect.bisect_right(ts, max(end_ms - duration_ms, ts[-1] - self._keep_ms - 1))
        hi = len(ts) if end_ms >= ts[-1] else bisect.bisect_right(ts, end_ms)
        if hi <= lo:
            return WindowMean(None, 0.0, 0)
        n = self._n(lo, hi)
        expected = max(duration_ms / self._period_ms, 1.0)
        completeness = min(n / expected, 1.0)
        if not n or completeness + 1e-9 < min_completeness:
            return WindowMean(None, completeness, n)
        return WindowMean(self._window_sum(lo, hi, n) / (n * _SCALE), completeness, n)

    def mean_value(self, end_ms: int, duration_ms: int, min_completeness: float) -> float | None:
        """`mean(...).value`, without building the WindowMean: the alert engine's per-reading path,
        where the window usually ends at the reading just added (one bisection, not two)."""
        ts = self._ts
        if not ts:
            return None
        lo = bisect.bisect_right(ts, max(end_ms - duration_ms, ts[-1] - self._keep_ms - 1))
        hi = len(ts) if end_ms >= ts[-1] else bisect.bisect_right(ts, end_ms)
        if hi <= lo:
            return None
        n = self._n(lo, hi)
        if not n or min(n / max(duration_ms / self._period_ms, 1.0), 1.0) + 1e-9 < min_completeness:
            return None
        return self._window_sum(lo, hi, n) / (n * _SCALE)

    def hourly_means(self, t_ms: int, min_completeness: float) -> tuple[float | None, ...]:
        """The 12 hourly means before the last full hour at `t_ms`, most recent first (NowCast).

        Kept until the hour changes or history before it is edited: readings appended in order come
        after every reading seen, so they cannot fall into hours that had closed when these were
        computed."""
        hour_end = t_ms - t_ms % HOUR_MS
        key = (hour_end, min_completeness, self._edits, self._period_ms)
        # (a key that matches was computed from readings, and the newest one stays)
        if key == self._hourly_key and self._ts[-1] - self._keep_ms <= hour_end - NOWCAST_HOURS * HOUR_MS:
            return self._hourly
        means = tuple(
            self.mean(hour_end - i * HOUR_MS, HOUR_MS, min_completeness).value for i in range(NOWCAST_HOURS)
        )
        if self._ts and self._ts[-1] >= hour_end:  # no in-order append can land in these hours now
            self._hourly_key, self._hourly = key, means
        return means
