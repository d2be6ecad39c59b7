"""The PMS5003 driver on a pty: real captured frames through pyserial and adafruit_pm25."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contract.metrics import Metric
from hardware.base import FrameError, PortGone, SensorError, SensorSilent
from hardware.pms5003 import FIELDS, Pms5003, Pms5003Options, _decode
from hardware.ports import open_serial
from tests.fakes.clock import FakeClock
from tests.fakes.frames import corrupt, load
from tests.fakes.pty import PtySensor

FRAMES = load("pms5003")
ZERO = load("pms5003-warmup")[0]
REAL = {tuple(float(_decode(f)[name]) for name, _ in FIELDS) for f in FRAMES}


def driver(pty: PtySensor, clock: FakeClock, **kw: object) -> Pms5003:
    opts = Pms5003Options.model_validate({"type": "pms5003", "port": pty.path, "frame_timeout_s": 0.5, **kw})
    return Pms5003(opts, open_serial(opts.port), clock)


def values(samples: list) -> dict[Metric, float]:
    return {s.metric: s.raw for s in samples}


def test_a_captured_frame_gives_cf1_atmospheric_and_counts(pty_sensor: PtySensor, clock: FakeClock) -> None:
    pms = driver(pty_sensor, clock)
    pty_sensor.send(FRAMES[0])
    got = values(pms.read())
    assert got[Metric.PM1_0] == 0.0 and got[Metric.PM2_5] == 8.0 and got[Metric.PM10] == 8.0
    assert got[Metric.PM2_5_ATM] == 8.0 and got[Metric.PM10_ATM] == 8.0
    assert [got[m] for m in (Metric.PC0_3, Metric.PC0_5, Metric.PC1_0, Metric.PC2_5)] == [210, 70, 45, 30]
    assert got[Metric.PC5_0] == 0.0 and got[Metric.PC10] == 0.0
    assert set(got) == set(pms.metrics)
    pms.close()


def test_every_waiting_frame_is_read_at_the_sensors_rate(pty_sensor: PtySensor, clock: FakeClock) -> None:
    pms = driver(pty_sensor, clock)
    pty_sensor.send(b"".join(FRAMES[:5]))
    samples = pms.read()
    pm25 = [s.raw for s in samples if s.metric is Metric.PM2_5]
    assert pm25 == [8.0, 7.0, 7.0, 7.0, 7.0]
    pms.close()


def test_bad_checksum_is_dropped_and_the_next_frame_read(pty_sensor: PtySensor, clock: FakeClock) -> None:
    pms = driver(pty_sensor, clock)
    pty_sensor.send(corrupt(FRAMES[0]) + FRAMES[9])
    with pytest.raises(FrameError, match="checksum"):
        pms.read()
    assert values(pms.read())[Metric.PM2_5] == 5.0
    pms.close()


def test_after_a_truncated_frame_the_next_header_is_found(pty_sensor: PtySensor, clock: FakeClock) -> None:
    pms = driver(pty_sensor, clock)
    pty_sensor.send(FRAMES[0][:20] + FRAMES[9] + FRAMES[5])
    with pytest.raises(FrameError):
        pms.read()  # the partial frame plus the start of the next fails its checksum
    pm25 = [s.raw for s in pms.read() if s.metric is Metric.PM2_5]
    assert pm25 == [5.0, 6.0]  # the frame right behind the partial one is not lost
    pms.close()


def test_garbage_between_frames_is_skipped(pty_sensor: PtySensor, clock: FakeClock) -> None:
    pms = driver(pty_sensor, clock)
    pty_sensor.send(b"\x00\xff\x42\x13BM\x00" + FRAMES[9] + b"\x42\x4d\x42" + FRAMES[0])
    assert [s.raw for s in pms.read() if s.metric is Metric.PM2_5] == [5.0, 8.0]
    pms.close()


def test_silence_and_garbage_only_are_told_apart(pty_sensor: PtySensor, clock: FakeClock) -> None:
    pms = driver(pty_sensor, clock)
    with pytest.raises(SensorSilent, match=f"no data on {pty_sensor.path}"):
        pms.read()
    pty_sensor.send(bytes(range(0x50, 0x90)))
    with pytest.raises(FrameError, match="no whole frame"):
        pms.read()
    pms.close()


def test_the_warm_up_zero_frame_is_never_a_reading(pty_sensor: PtySensor, clock: FakeClock) -> None:
    pms = driver(pty_sensor, clock)
    assert pms.is_warming_up
    pty_sensor.send(ZERO + ZERO)
    assert pms.read() == []
    clock.advance(30)
    assert not pms.is_warming_up
    pty_sensor.send(ZERO)
    with pytest.raises(FrameError, match="all-zero"):
        pms.read()
    pms.close()


def test_a_vanished_port_is_reopened_when_it_comes_back(pty_sensor: PtySensor, clock: FakeClock) -> None:
    pms = driver(pty_sensor, clock)
    pty_sensor.send(FRAMES[0])
    assert pms.read()
    clock.advance(60)
    assert not pms.is_warming_up
    pty_sensor.unplug()
    with pytest.raises(PortGone):
        pms.read()
    with pytest.raises(PortGone, match="does not exist"):
        pms.read()
    pty_sensor.plug()
    with pty_sensor.streaming([FRAMES[9]]):
        assert values(pms.read())[Metric.PM2_5] == 5.0
    assert pms.is_warming_up  # a replugged sensor has been powered off: its fan starts again
    pms.close()


def test_open_with_the_sensor_absent_starts_and_reports_on_read(tmp_path, clock: FakeClock) -> None:
    opts = Pms5003Options(type="pms5003", port=str(tmp_path / "ttyUSB9"))
    pms = Pms5003.open(opts, clock)
    with pytest.raises(PortGone, match="does not exist: is the USB adapter plugged in"):
        pms.read()
    pms.close()


def test_serial_console_hint_for_the_pi_uart(tmp_path, clock: FakeClock) -> None:
    with pytest.raises(PortGone, match="serial console"):
        open_serial(str(tmp_path / "serial0"))


@settings(max_examples=20)
@given(
    chunks=st.lists(
        st.one_of(
            st.binary(min_size=1, max_size=40),
            st.sampled_from(FRAMES),
            st.sampled_from([f[:17] for f in FRAMES]),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_byte_stream_gives_only_real_frames_or_sensor_errors(
    tmp_path_factory, chunks: list[bytes]
) -> None:
    """Garbage, partial frames and real frames in any order: every sample comes from a real frame, and
    every failure is a SensorError the sampler knows how to handle."""
    pty = PtySensor(tmp_path_factory.mktemp("pty"))
    clock = FakeClock()
    try:
        pms = driver(pty, clock, frame_timeout_s=0.05)
        pty.send(b"".join(chunks))
        for _ in range(2 * len(chunks) + 4):
            try:
                samples = pms.read()
            except SensorSilent:
                break
            except SensorError:
                continue
            for i in range(0, len(samples), 12):
                assert tuple(s.raw for s in samples[i : i + 12]) in REAL
        pms.close()
    finally:
        pty.close()
