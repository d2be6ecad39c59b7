"""Samples every sensor at its own rate and averages the samples into one reading per window.

Windows are `interval_s` long and aligned to the epoch (a 60 s window ends on the minute), keyed by
each sample's own timestamp, so replayed data lands in the windows it was recorded in. A window
closes once the clock has passed its end. The fault policy lives here and only here: a sensor that
raises is retried with exponential backoff, its metrics go null with `sensor_fault` for windows in
which nothing valid was read, and the episode is logged once when it starts and once when it ends
(an episode starting within a minute of the last one reported is only counted, unless it lasts
three reads: a flaky cable must not write a line every few seconds to the SD card).
The same holds for a sensor repeating identical values for its `stuck_after_s` (stuck: its samples
are dropped, `sensor_fault`) and for samples outside the part's physical range (dropped from the
mean, `out_of_range`; when nothing else was read the metric is null with their mean as `raw`).
A window in which a driver said it was warming up carries `warming_up`; a window with nothing in it
(a PMS sending only its warm-up zeros) gives no reading at all.
Windows are keyed by metric, so each metric must come from one sensor: node.config refuses two
sensors reporting the same metric (their samples would be averaged into one value), and a sensor's
`metrics` key (`keep` here) leaves out what another sensor of the node reports.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from contract.clock import Clock
from contract.flags import Flag
from contract.metrics import PHYSICAL_RANGE, Metric
from hardware.base import (
    Sample,
    SensorDriver,
    SensorError,
    default_curves,
    is_warming_up,
    raw_range,
    stuck_after_s,
)

log = logging.getLogger(__name__)

MAX_BACKOFF_S = 60.0
QUIET_S = 60.0  # a new fault episode this soon after the last one reported is counted, not logged
LONG_EPISODE_READS = 3  # ... unless it lasts this many failed reads


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
    keep: frozenset[Metric] | None = None  # the `metrics` key: only these are averaged
    health: SensorHealth = field(default_factory=SensorHealth)
    backoff_s: float = 0.0
    last_values: dict[Metric, float] = field(default_factory=dict)
    same_since: datetime | None = None
    is_stuck: bool = False
    out_of_range: set[Metric] = field(default_factory=set)
    warned_at: datetime | None = None
    quiet_episodes: int = 0


@dataclass(slots=True)
class _Window:
    sums: dict[Metric, float] = field(default_factory=dict)
    counts: dict[Metric, int] = field(default_factory=dict)
    faulted: set[Metric] = field(default_factory=set)
    flags: set[Flag] = field(default_factory=set)
    rejected_sums: dict[Metric, float] = field(default_factory=dict)  # out of the part's range
    rejected_counts: dict[Metric, int] = field(default_factory=dict)

    def add(self, sample: Sample) -> None:
        self.sums[sample.metric] = self.sums.get(sample.metric, 0.0) + sample.raw
        self.counts[sample.metric] = self.counts.get(sample.metric, 0) + 1

    def reject(self, sample: Sample) -> None:
        self.rejected_sums[sample.metric] = self.rejected_sums.get(sample.metric, 0.0) + sample.raw
        self.rejected_counts[sample.metric] = self.rejected_counts.get(sample.metric, 0) + 1


@dataclass(frozen=True, slots=True)
class SensorSpec:
    name: str
    driver: SensorDriver
    interval_s: float
    keep: frozenset[Metric] | None = None  # the `[[sensors]] metrics` key; None: all it reports


class Sampler:
    def __init__(
        self,
        sensors: Sequence[SensorSpec],
        interval_s: int,
        clock: Clock,
        calibrate: Calibrate = uncalibrated,
    ) -> None:
        start = clock()
        self._slots = [_Slot(s.name, s.driver, s.interval_s, start, s.keep) for s in sensors]
        self._interval_s = interval_s
        self._calibrate = calibrate
        self._curves = {m: c for s in sensors for m, c in default_curves(s.driver).items()}
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
        if slot.keep is not None:  # another sensor of the node reports the others (node.config)
            samples = [s for s in samples if s.metric in slot.keep]
        if slot.health.failures and not slot.quiet_episodes:
            log.info("sensor %s recovered after %d failed reads", slot.name, slot.health.failures)
        slot.health.failures = 0
        slot.backoff_s = 0.0
        slot.next_due = now + timedelta(seconds=slot.interval_s)
        if is_warming_up(slot.driver):
            window = self._window(now)
            if window is not None:
                window.flags.add(Flag.WARMING_UP)
        if self._is_stuck(slot, samples, now):
            return
        limits = raw_range(slot.driver)
        for sample in samples:
            window = self._window(sample.taken_at)
            if window is None:
                continue
            low, high = limits.get(sample.metric, (-math.inf, math.inf))
            if low <= sample.raw <= high:
                window.add(sample)
                if sample.metric in slot.out_of_range:
                    slot.out_of_range.discard(sample.metric)
                    log.info("sensor %s: %s back within its range", slot.name, sample.metric.value)
                continue
            window.reject(sample)
            slot.health.last_error = (
                f"{sample.metric.value} {sample.raw:g} outside the sensor's range {low:g}…{high:g}"
            )
            if sample.metric not in slot.out_of_range:  # once per episode
                slot.out_of_range.add(sample.metric)
                log.warning("sensor %s: %s", slot.name, slot.health.last_error)
        slot.health.ok = not slot.out_of_range
        if slot.health.ok:
            slot.health.last_ok = now

    def _is_stuck(self, slot: _Slot, samples: list[Sample], now: datetime) -> bool:
        """Identical values for `stuck_after_s`: a frozen sensor repeats its last answer. Reads that
        return nothing (warm-up, asleep between measurements) neither prove nor disprove it."""
        limit = stuck_after_s(slot.driver)
        if limit is None or not samples:
            return slot.is_stuck
        values = {s.metric: s.raw for s in samples}
        if values != slot.last_values or slot.same_since is None:
            if slot.is_stuck:
                log.info("sensor %s: values change again", slot.name)
            slot.last_values, slot.same_since, slot.is_stuck = values, now, False
            return False
        constant_s = (now - slot.same_since).total_seconds()
        if constant_s < limit:
            return False
        if not slot.is_stuck:  # once per episode
            log.warning(
                "sensor %s: the same values for %.0f s: stuck? its readings are dropped",
                slot.name,
                constant_s,
            )
            slot.is_stuck = True
        slot.health.ok, slot.health.last_error = False, f"stuck: the same values for {constant_s:.0f} s"
        window = self._window(now)
        if window is not None:
            window.faulted.update(_metrics(slot))
        return True

    def _fault(self, slot: _Slot, now: datetime, exc: SensorError) -> None:
        if slot.health.failures == 0:  # once per episode, not once a second
            # and a bad frame every few seconds is one long episode, not one line each time
            if slot.warned_at is None or (now - slot.warned_at).total_seconds() >= QUIET_S:
                quiet = (
                    f" ({slot.quiet_episodes} short episode(s) since the last report)"
                    if slot.quiet_episodes
                    else ""
                )
                log.warning("sensor %s: %s%s", slot.name, exc, quiet)
                slot.warned_at, slot.quiet_episodes = now, 0
            else:
                slot.quiet_episodes += 1
        elif slot.health.failures == LONG_EPISODE_READS and slot.warned_at != now and slot.quiet_episodes:
            # a short episode that goes on is a real one after all: say so, and say when it ends
            log.warning("sensor %s: %s (%d failed reads in a row)", slot.name, exc, slot.health.failures)
            slot.warned_at, slot.quiet_episodes = now, 0
        slot.health.ok, slot.health.last_error = False, str(exc)
        slot.health.failures += 1
        slot.backoff_s = min(max(slot.backoff_s * 2, slot.interval_s), MAX_BACKOFF_S)
        slot.next_due = now + timedelta(seconds=slot.backoff_s)
        window = self._window(now)
        if window is not None:
            window.faulted.update(_metrics(slot))

    def _close(self, now: datetime) -> list[Reading]:
        readings = []
        for start in sorted(self._windows):
            end = start + self._interval_s
            if end > now.timestamp():
                break
            reading = self._finish(start, self._windows.pop(start))
            self._closed_before = end
            if reading.metrics:  # nothing measured (only warm-up zeros): nothing to say
                readings.append(reading)
        return readings

    def _finish(self, start: int, window: _Window) -> Reading:
        means = {m: window.sums[m] / window.counts[m] for m in window.counts}
        flags = set(window.flags)
        metrics: dict[Metric, MetricReading] = {}
        for metric in sorted(set(means) | window.faulted | set(window.rejected_counts)):
            if metric in window.rejected_counts:
                flags.add(Flag.OUT_OF_RANGE)
            if metric not in means:
                rejected = window.rejected_counts.get(metric)
                raw_kept = round(window.rejected_sums[metric] / rejected, 4) if rejected else None
                metrics[metric] = MetricReading(value=None, raw=raw_kept, n=0)
                if metric in window.faulted:
                    flags.add(Flag.SENSOR_FAULT)
                continue
            raw = round(means[metric], 4)
            value, cal, cal_flags = self._calibrate(metric, raw, means)
            flags |= cal_flags
            curve = self._curves.get(metric)
            if cal is None and curve is not None:  # the driver's documented default until calibrated
                value, cal = curve.apply(raw), curve.cal
                if value is None:
                    flags.add(Flag.OUT_OF_RANGE)
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


def _metrics(slot: _Slot) -> list[Metric]:
    return [m for m in slot.driver.metrics if slot.keep is None or m in slot.keep]
