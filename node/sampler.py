"""Samples every sensor at its own rate and averages the samples into one reading per window.

Windows are `interval_s` long and aligned to the epoch (a 60 s window ends on the minute), keyed by
each sample's own timestamp, so replayed data lands in the windows it was recorded in. A window
closes once the clock has passed its end. The fault policy lives here and only here: a sensor that
raises is retried with exponential backoff, its metrics go null with `sensor_fault` for windows in
which nothing valid was read, and the episode is logged once when it starts and once when it ends.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from gateway.schema import PHYSICAL_RANGE, Flag
from hardware.base import Clock, Metric, Sample, SensorDriver, SensorError

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0


@dataclass(frozen=True, slots=True)
class MetricReading:
    value: float | None
    raw: float | None
    n: int
    cal: str | None = None


@dataclass(frozen=True, slots=True)
class Reading:
    """One averaged window, before it gets its `seq` and goes on the wire."""

    ts: datetime  # end of the window
    period_s: int
    metrics: dict[Metric, MetricReading]
    flags: frozenset[Flag]


Calibrate = Callable[[Metric, float, dict[Metric, float]], tuple[float | None, str | None, set[Flag]]]
"""(metric, averaged raw, other averaged raws of the window) -> (value, cal id, flags)."""


def uncalibrated(
    metric: Metric, raw: float, window: dict[Metric, float]
) -> tuple[float | None, str | None, set[Flag]]:
    return raw, None, set()


@dataclass(slots=True)
class SensorHealth:
    """What the node's status reports per sensor."""

    ok: bool = True
    last_error: str | None = None
    last_ok: datetime | None = None
    failures: int = 0


@dataclass(slots=True)
class _Slot:
    name: str
    driver: SensorDriver
    interval_s: float
    next_due: datetime
    health: SensorHealth = field(default_factory=SensorHealth)
    backoff_s: float = 0.0


@dataclass(slots=True)
class _Window:
    sums: dict[Metric, float] = field(default_factory=dict)
    counts: dict[Metric, int] = field(default_factory=dict)
    faulted: set[Metric] = field(default_factory=set)
    flags: set[Flag] = field(default_factory=set)

    def add(self, sample: Sample) -> None:
        self.sums[sample.metric] = self.sums.get(sample.metric, 0.0) + sample.raw
        self.counts[sample.metric] = self.counts.get(sample.metric, 0) + 1


@dataclass(frozen=True, slots=True)
class SensorSpec:
    name: str
    driver: SensorDriver
    interval_s: float


class Sampler:
    def __init__(
        self,
        sensors: Sequence[SensorSpec],
        interval_s: int,
        clock: Clock,
        calibrate: Calibrate = uncalibrated,
    ) -> None:
        start = clock()
        self._slots = [_Slot(s.name, s.driver, s.interval_s, start) for s in sensors]
        self._interval_s = interval_s
        self._calibrate = calibrate
        self._windows: dict[int, _Window] = {}
        self._closed_before = 0  # window starts (epoch s) below this are closed
        self.late_samples = 0

    @property
    def health(self) -> dict[str, SensorHealth]:
        return {slot.name: slot.health for slot in self._slots}

    def next_wakeup(self) -> datetime:
        """When `tick` next has something to do: a sensor due, or a window to close."""
        due = min(slot.next_due for slot in self._slots)
        if self._windows:
            first_end = min(self._windows) + self._interval_s
            due = min(due, datetime.fromtimestamp(first_end, UTC))
        return due

    def tick(self, now: datetime) -> list[Reading]:
        readings: list[Reading] = []
        if self._closed_before and now.timestamp() < self._closed_before - self._interval_s:
            # The clock was set back by more than a window (an RTC-less Pi corrected by NTP): every
            # new sample would count as late. Close what is open and start windowing afresh; the
            # node flags readings whose ts goes backwards.
            log.warning("clock went back to %s; starting new averaging windows", now.isoformat())
            readings = self.flush(datetime.fromtimestamp(self._closed_before, UTC))
            self._closed_before = 0
            for slot in self._slots:
                slot.next_due = min(slot.next_due, now)
        for slot in self._slots:
            if slot.next_due <= now:
                self._sample(slot, now)
        return readings + self._close(now)

    def flush(self, now: datetime) -> list[Reading]:
        """Close every open window (clean shutdown): a partial window is better than none."""
        return self._close(now + timedelta(seconds=self._interval_s * 2))

    def _window_start(self, ts: datetime) -> int:
        return math.floor(ts.timestamp() / self._interval_s) * self._interval_s

    def _window(self, ts: datetime) -> _Window | None:
        start = self._window_start(ts)
        if start < self._closed_before:
            self.late_samples += 1
            return None
        return self._windows.setdefault(start, _Window())

    def _sample(self, slot: _Slot, now: datetime) -> None:
        try:
            samples = slot.driver.read()
        except SensorError as exc:
            self._fault(slot, now, exc)
            return
        if slot.health.failures:
            log.info("sensor %s recovered after %d failed reads", slot.name, slot.health.failures)
        slot.health.ok, slot.health.last_ok, slot.health.failures = True, now, 0
        slot.backoff_s = 0.0
        slot.next_due = now + timedelta(seconds=slot.interval_s)
        for sample in samples:
            window = self._window(sample.taken_at)
            if window is not None:
                window.add(sample)

    def _fault(self, slot: _Slot, now: datetime, exc: SensorError) -> None:
        if slot.health.failures == 0:  # once per episode, not once a second
            log.warning("sensor %s: %s", slot.name, exc)
        slot.health.ok, slot.health.last_error = False, str(exc)
        slot.health.failures += 1
        slot.backoff_s = min(max(slot.backoff_s * 2, slot.interval_s), MAX_BACKOFF_S)
        slot.next_due = now + timedelta(seconds=slot.backoff_s)
        window = self._window(now)
        if window is not None:
            window.faulted.update(slot.driver.metrics)

    def _close(self, now: datetime) -> list[Reading]:
        readings = []
        for start in sorted(self._windows):
            end = start + self._interval_s
            if end > now.timestamp():
                break
            readings.append(self._finish(start, self._windows.pop(start)))
            self._closed_before = end
        return readings

    def _finish(self, start: int, window: _Window) -> Reading:
        means = {m: window.sums[m] / window.counts[m] for m in window.counts}
        flags = set(window.flags)
        metrics: dict[Metric, MetricReading] = {}
        for metric in sorted(set(means) | window.faulted):
            if metric not in means:
                metrics[metric] = MetricReading(value=None, raw=None, n=0)
                flags.add(Flag.SENSOR_FAULT)
                continue
            raw = round(means[metric], 4)
            value, cal, cal_flags = self._calibrate(metric, raw, means)
            flags |= cal_flags
            low, high = PHYSICAL_RANGE[metric]
            if value is not None and not low <= value <= high:  # impossible: keep raw, drop value
                value = None
                flags.add(Flag.OUT_OF_RANGE)
            metrics[metric] = MetricReading(
                value=None if value is None else round(value, 4),
                raw=raw,
                n=window.counts[metric],
                cal=cal,
            )
        ts = datetime.fromtimestamp(start + self._interval_s, UTC)
        return Reading(ts=ts, period_s=self._interval_s, metrics=metrics, flags=frozenset(flags))
