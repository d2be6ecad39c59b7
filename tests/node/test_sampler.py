"""Sampling and averaging with a simulated clock: a day runs in milliseconds, nothing sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contract.flags import Flag
from contract.metrics import Metric
from hardware.base import Sample, SensorError, SensorSilent
from hardware.replay_csv import ReplayCsv, ReplayCsvOptions, ReplayFileError, load_rows
from hardware.simulated import (
    Event,
    SimulatedPm,
    SimulatedPmOptions,
    SimulatedTurbidity,
    SimulatedTurbidityOptions,
)
from node.sampler import Sampler, SensorSpec
from tests.fakes.clock import FakeClock

T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


def run(sampler: Sampler, clock: FakeClock, seconds: int, step: float = 1.0) -> list:
    readings = []
    for _ in range(int(seconds / step)):
        readings += sampler.tick(clock())
        clock.advance(step)
    return readings


def test_one_reading_per_window_with_the_mean_of_its_samples() -> None:
    clock = FakeClock(T0)
    opts = SimulatedPmOptions(type="simulated-pm", noise=0.0, daily_amplitude=0.0, baseline=20.0)
    sampler = Sampler([SensorSpec("pm", SimulatedPm(opts, clock), 1.0)], 60, clock)
    readings = run(sampler, clock, 600)
    assert len(readings) == 9  # ten windows started; the tenth is still open
    first = readings[0]
    assert first.ts == T0 + timedelta(seconds=60)
    assert first.period_s == 60
    assert first.metrics[Metric.PM2_5].n == 60
    assert first.metrics[Metric.PM2_5].raw == pytest.approx(20.0)
    assert first.metrics[Metric.PM10].raw == pytest.approx(32.0)
    assert first.flags == frozenset()
    assert [r.ts for r in readings] == [T0 + timedelta(seconds=60 * (i + 1)) for i in range(9)]


def test_a_pollution_event_raises_the_windows_it_covers_only() -> None:
    clock = FakeClock(T0)
    opts = SimulatedPmOptions(
        type="simulated-pm",
        noise=0.0,
        daily_amplitude=0.0,
        baseline=10.0,
        events=[Event(start_s=120, duration_s=60, add=100.0)],
    )
    sampler = Sampler([SensorSpec("pm", SimulatedPm(opts, clock), 1.0)], 60, clock)
    values = [r.metrics[Metric.PM2_5].raw for r in run(sampler, clock, 300)]
    assert values == pytest.approx([10.0, 10.0, 110.0, 10.0])


def test_simulation_is_reproducible_from_its_seed() -> None:
    def series(seed: int) -> list[float]:
        clock = FakeClock(T0)
        opts = SimulatedTurbidityOptions(type="simulated-turbidity", seed=seed)
        sensor = SimulatedTurbidity(opts, clock)
        out = []
        for _ in range(50):
            out.append(sensor.read()[0].raw)
            clock.advance(1)
        return out

    assert series(7) == series(7)
    assert series(7) != series(8)


class Flaky:
    """A sensor that fails while `broken` is set: the sampler's policy is what is under test."""

    metrics = (Metric.TURBIDITY,)

    def __init__(self, clock: FakeClock) -> None:
        self.clock, self.broken, self.reads = clock, False, 0

    def read(self) -> list[Sample]:
        self.reads += 1
        if self.broken:
            raise SensorSilent("no data on /dev/ttyUSB0")
        return [Sample(Metric.TURBIDITY, 5.0, self.clock())]

    def close(self) -> None:
        pass


def test_a_silent_sensor_gives_null_with_sensor_fault_backs_off_and_recovers(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock(T0)
    flaky = Flaky(clock)
    sampler = Sampler([SensorSpec("probe", flaky, 1.0)], 60, clock)
    assert len(run(sampler, clock, 60)) == 0
    flaky.broken = True
    reads_before = flaky.reads
    broken = run(sampler, clock, 600)
    assert flaky.reads - reads_before < 30  # backoff, not 600 reads
    assert sampler.health["probe"].ok is False
    flaky.broken = False
    healed = run(sampler, clock, 240)
    faulty = [r for r in broken if Flag.SENSOR_FAULT in r.flags]
    assert faulty and all(r.metrics[Metric.TURBIDITY].value is None for r in faulty)
    assert all(r.metrics[Metric.TURBIDITY].n == 0 for r in faulty)
    assert healed[-1].metrics[Metric.TURBIDITY].value == 5.0
    assert Flag.SENSOR_FAULT not in healed[-1].flags
    assert sampler.health["probe"].ok is True
    warnings = [r for r in caplog.records if "no data" in r.getMessage()]
    assert len(warnings) == 1  # once per episode


def test_other_sensors_keep_going_when_one_fails() -> None:
    clock = FakeClock(T0)
    flaky = Flaky(clock)
    flaky.broken = True
    opts = SimulatedPmOptions(type="simulated-pm", noise=0.0, daily_amplitude=0.0)
    sampler = Sampler(
        [SensorSpec("probe", flaky, 1.0), SensorSpec("pm", SimulatedPm(opts, clock), 1.0)], 60, clock
    )
    reading = run(sampler, clock, 120)[0]
    assert reading.metrics[Metric.PM2_5].n == 60
    assert reading.metrics[Metric.TURBIDITY].value is None


def test_impossible_values_are_flagged_out_of_range_and_not_sent_as_values() -> None:
    class Broken:
        metrics = (Metric.RH,)

        def read(self) -> list[Sample]:
            return [Sample(Metric.RH, 180.0, T0)]

        def close(self) -> None:
            pass

    clock = FakeClock(T0)
    sampler = Sampler([SensorSpec("rh", Broken(), 1.0)], 60, clock)
    reading = run(sampler, clock, 61)[0]
    assert reading.metrics[Metric.RH].value is None
    assert reading.metrics[Metric.RH].raw == 180.0
    assert Flag.OUT_OF_RANGE in reading.flags


def test_replay_csv_keeps_recorded_timestamps(tmp_path: Path) -> None:
    csv_path = tmp_path / "river.csv"
    lines = ["timestamp,turbidity,water_temp"]
    start = datetime(2025, 6, 1, 0, 0, tzinfo=UTC)
    for i in range(180):  # three minutes at 1 Hz
        lines.append(f"{(start + timedelta(seconds=i)).isoformat()},{i // 60 * 10 + 1},{12.5}")
    csv_path.write_text("\n".join(lines) + "\n")
    opts = ReplayCsvOptions(type="replay-csv", path=csv_path, chunk_s=60)
    clock = FakeClock(T0)
    sampler = Sampler([SensorSpec("replay", ReplayCsv.open(opts, clock), 1.0)], 60, clock)
    readings = run(sampler, clock, 5)
    assert [r.ts for r in readings] == [start + timedelta(seconds=60 * k) for k in (1, 2, 3)]
    assert [r.metrics[Metric.TURBIDITY].raw for r in readings] == [1, 11, 21]
    assert all(r.metrics[Metric.TURBIDITY].n == 60 for r in readings)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("time,turbidity\n2025-01-01T00:00:00Z,1\n", "no 'timestamp' column"),
        ("timestamp,co2\n2025-01-01T00:00:00Z,1\n", "column 'co2' is not a metric"),
        ("timestamp,rh\n2025-01-01T00:00:00Z,wet\n", "row 2: column 'rh': 'wet' is not a number"),
        ("timestamp,rh\nyesterday,1\n", "row 2: column 'timestamp'"),
        ("timestamp,rh\n2025-01-02T00:00:00Z,1\n2025-01-01T00:00:00Z,1\n", "row 3: timestamps go backwards"),
    ],
)
def test_bad_replay_files_name_the_row_and_column(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(ReplayFileError, match=message):
        load_rows(path)


def test_sensor_error_hierarchy_tells_callers_what_to_do() -> None:
    assert issubclass(SensorSilent, TimeoutError) and issubclass(SensorSilent, SensorError)
