"""The sampler's policy for real-sensor trouble: warm-up, stuck values, impossible values, default
curves, and a vanished port, with a simulated clock (no sleeps) and drivers that follow the protocol."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import ClassVar

import pytest

from contract.flags import Flag
from contract.metrics import Metric
from hardware.base import DefaultCurve, FrameError, RawRange, Sample, SensorSilent
from hardware.pms5003 import Pms5003, Pms5003Options
from hardware.ports import open_serial
from node.sampler import Reading, Sampler, SensorSpec
from tests.fakes.clock import FakeClock
from tests.fakes.frames import load
from tests.fakes.pty import PtySensor


class Scripted:
    """Returns whatever the test puts in `value` (None: nothing this read)."""

    metrics = (Metric.RH,)
    raw_range: ClassVar[RawRange] = {Metric.RH: (0.0, 100.0)}

    def __init__(self, clock: FakeClock, stuck_after_s: float | None = None) -> None:
        self.clock, self.value, self.stuck_after_s = clock, 50.0, stuck_after_s
        self.is_warming_up = False

    def read(self) -> list[Sample]:
        return [] if self.value is None else [Sample(Metric.RH, self.value, self.clock())]

    def close(self) -> None:
        pass


def run(sampler: Sampler, clock: FakeClock, seconds: int) -> list[Reading]:
    out: list[Reading] = []
    for _ in range(seconds):
        out += sampler.tick(clock())
        clock.advance(1)
    return out


def test_warm_up_flags_its_windows_and_empty_windows_give_no_reading(clock: FakeClock) -> None:
    sensor = Scripted(clock)
    sensor.is_warming_up, sensor.value = True, None
    sampler = Sampler([SensorSpec("rh", sensor, 1.0)], 60, clock)
    assert run(sampler, clock, 60) == []  # nothing but warm-up: nothing to publish
    run(sampler, clock, 30)
    sensor.value = 40.0
    run(sampler, clock, 10)
    sensor.is_warming_up = False
    readings = run(sampler, clock, 81)
    assert [Flag.WARMING_UP in r.flags for r in readings] == [True, False]
    assert readings[0].metrics[Metric.RH].n == 30  # 10 s in warm-up and 20 s after it


def test_out_of_range_samples_are_dropped_flagged_and_logged_once(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sensor = Scripted(clock)
    sampler = Sampler([SensorSpec("rh", sensor, 1.0)], 60, clock)
    sensor.value = 120.0
    first = run(sampler, clock, 61)[0]
    assert first.metrics[Metric.RH].value is None
    assert first.metrics[Metric.RH].raw == 120.0 and first.metrics[Metric.RH].n == 0
    assert Flag.OUT_OF_RANGE in first.flags and Flag.SENSOR_FAULT not in first.flags
    assert sampler.health["rh"].ok is False and "outside the sensor's range" in str(
        sampler.health["rh"].last_error
    )
    sensor.value = 30.0
    mixed = run(sampler, clock, 60)[0]
    assert mixed.metrics[Metric.RH].value == 30.0
    assert sampler.health["rh"].ok is True
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "outside" in r.getMessage()]
    assert len(warnings) == 1


def test_a_stuck_sensor_goes_null_with_sensor_fault_until_its_values_move(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sensor = Scripted(clock, stuck_after_s=300)
    sampler = Sampler([SensorSpec("rh", sensor, 1.0)], 60, clock)
    readings = run(sampler, clock, 600)
    assert readings[0].metrics[Metric.RH].value == 50.0  # not yet suspicious
    stuck = [r for r in readings if Flag.SENSOR_FAULT in r.flags]
    assert stuck and all(r.metrics[Metric.RH].value is None for r in stuck)
    assert sampler.health["rh"].ok is False and "stuck" in str(sampler.health["rh"].last_error)
    sensor.value = 51.0
    after = run(sampler, clock, 121)
    assert after[-1].metrics[Metric.RH].value == 51.0 and Flag.SENSOR_FAULT not in after[-1].flags
    assert sampler.health["rh"].ok is True
    assert len([r for r in caplog.records if "stuck?" in r.getMessage()]) == 1


def test_a_drivers_default_curve_applies_until_a_calibration_names_itself(clock: FakeClock) -> None:
    class Volts(Scripted):
        metrics = (Metric.TURBIDITY,)
        raw_range: ClassVar[RawRange] = {Metric.TURBIDITY: (0.0, 5.0)}
        default_curves: ClassVar[Mapping[Metric, DefaultCurve]] = {
            Metric.TURBIDITY: DefaultCurve("test-curve", lambda v: None if v > 4 else 100 * v)
        }

        def read(self) -> list[Sample]:
            return [Sample(Metric.TURBIDITY, float(self.value or 0), self.clock())]

    sensor = Volts(clock)
    sensor.value = 2.0
    sampler = Sampler([SensorSpec("probe", sensor, 1.0)], 60, clock)
    reading = run(sampler, clock, 61)[0].metrics[Metric.TURBIDITY]
    assert (reading.value, reading.raw, reading.cal) == (200.0, 2.0, "test-curve")
    sensor.value = 4.5
    beyond = run(sampler, clock, 60)[0]
    assert beyond.metrics[Metric.TURBIDITY].value is None and Flag.OUT_OF_RANGE in beyond.flags

    def calibrated(metric: Metric, raw: float, window: dict[Metric, float]) -> tuple[float, str, set[Flag]]:
        return raw * 10, "cal-7", set()

    sensor.value = 2.0
    own = Sampler([SensorSpec("probe", sensor, 1.0)], 60, clock, calibrated)
    assert run(own, clock, 61)[0].metrics[Metric.TURBIDITY].cal == "cal-7"


def test_a_pms_through_the_sampler_zero_frames_then_data_then_unplugged(
    pty_sensor: PtySensor, clock: FakeClock
) -> None:
    frames, zero = load("pms5003"), load("pms5003-warmup")[0]
    opts = Pms5003Options(type="pms5003", port=pty_sensor.path, frame_timeout_s=0.3)
    pms = Pms5003(opts, open_serial(opts.port), clock)
    sampler = Sampler([SensorSpec("pms5003", pms, 1.0)], 10, clock)
    readings: list[Reading] = []
    for second in range(60):
        pty_sensor.send(zero if second < 15 else frames[second % len(frames)])
        readings += sampler.tick(clock())
        clock.advance(1)
    assert [Flag.WARMING_UP in r.flags for r in readings] == [True, True, False, False]
    assert all(r.metrics[Metric.PM2_5].value is not None for r in readings)
    assert readings[0].metrics[Metric.PM2_5].n == 5  # seconds 15…19: the zero frames counted nothing
    assert len(readings[0].metrics) == 12
    pty_sensor.unplug()
    gone = []
    for _ in range(40):
        gone += sampler.tick(clock())
        clock.advance(1)
    assert gone and all(Flag.SENSOR_FAULT in r.flags for r in gone[1:])
    assert sampler.health["pms5003"].ok is False
    pms.close()


def test_a_bad_frame_every_few_seconds_is_not_a_log_line_each_time(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Sometimes(Scripted):
        def read(self) -> list[Sample]:
            self.reads = getattr(self, "reads", 0) + 1
            if self.reads % 5 == 0:
                raise FrameError("bad PMS frame: Invalid PM2.5 checksum")
            return super().read()

    sampler = Sampler([SensorSpec("pms", Sometimes(clock), 1.0)], 60, clock)
    readings = run(sampler, clock, 600)
    assert all(r.metrics[Metric.RH].value == 50.0 for r in readings)  # the good reads carry on
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert 5 <= len(warnings) <= 11  # about once a minute, not ~120 times
    assert "short episode(s) since the last report" in warnings[-1]


def test_a_quiet_episode_that_goes_on_is_reported_after_all(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Dies(Scripted):
        dead = False

        def read(self) -> list[Sample]:
            self.reads = getattr(self, "reads", 0) + 1
            if self.dead or self.reads == 3:
                raise SensorSilent("no data on /dev/serial0")
            return super().read()

    caplog.set_level(logging.INFO, logger="node.sampler")
    sensor = Dies(clock)
    sampler = Sampler([SensorSpec("pms", sensor, 1.0)], 60, clock)
    run(sampler, clock, 10)  # one short episode: reported
    sensor.dead = True
    run(sampler, clock, 30)  # within a minute: quiet at first, reported on the third failed read
    sensor.dead = False
    run(sampler, clock, 120)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("no data" in m for m in messages) == 2
    assert any("3 failed reads in a row" in m for m in messages)
    assert any("recovered after" in m for m in messages)
