"""The SDS011 driver on a pty: captured frames in, the datasheet's command bytes out."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from contract.metrics import Metric
from gateway.devservices import free_port
from hardware.base import FrameError, PortGone, SensorSilent
from hardware.ports import open_serial
from hardware.sds011 import SLEEP, WAKE, Sds011, Sds011Options, working_period
from tests.fakes.clock import FakeClock
from tests.fakes.frames import corrupt, load
from tests.fakes.pty import PtySensor
from tests.helpers import node_toml, spawn, wait_for

FRAMES = load("sds011")
# From the SDS011 control protocol V1.3 examples (device id FF FF)
DATASHEET_WAKE = bytes.fromhex("aa b4 06 01 01 00 00 00 00 00 00 00 00 00 00 ff ff 06 ab")
DATASHEET_SLEEP = bytes.fromhex("aa b4 06 01 00 00 00 00 00 00 00 00 00 00 00 ff ff 05 ab")
DATASHEET_PERIOD_1 = bytes.fromhex("aa b4 08 01 01 00 00 00 00 00 00 00 00 00 00 ff ff 08 ab")


def driver(pty: PtySensor, clock: FakeClock, **kw: object) -> Sds011:
    opts = Sds011Options.model_validate({"type": "sds011", "port": pty.path, "frame_timeout_s": 0.5, **kw})
    return Sds011(opts, open_serial(opts.port), clock)


def test_command_bytes_match_the_datasheet() -> None:
    assert (WAKE, SLEEP, working_period(1)) == (DATASHEET_WAKE, DATASHEET_SLEEP, DATASHEET_PERIOD_1)


def test_open_wakes_it_sets_the_period_and_close_puts_it_to_sleep(
    pty_sensor: PtySensor, clock: FakeClock
) -> None:
    sds = driver(pty_sensor, clock, work_period_min=5)
    assert pty_sensor.received(38) == WAKE + working_period(5)
    assert not sds.is_warming_up  # in periodic mode the sensor spins up by itself before each frame
    sds.close()
    assert pty_sensor.received(19) == SLEEP


def test_captured_frames_give_tenths_of_ug(pty_sensor: PtySensor, clock: FakeClock) -> None:
    sds = driver(pty_sensor, clock)
    pty_sensor.drain()
    assert sds.is_warming_up
    pty_sensor.send(b"".join(FRAMES[:3]))
    samples = sds.read()
    assert [(s.metric, s.raw) for s in samples[:2]] == [(Metric.PM2_5, 0.6), (Metric.PM10, 0.6)]
    assert [s.raw for s in samples if s.metric is Metric.PM2_5] == [0.6, 0.9, 0.9]
    sds.close()


def test_bad_checksum_truncation_and_garbage(pty_sensor: PtySensor, clock: FakeClock) -> None:
    sds = driver(pty_sensor, clock)
    pty_sensor.send(corrupt(FRAMES[0], at=8) + FRAMES[7])
    with pytest.raises(FrameError, match="checksum"):
        sds.read()
    assert sds.read()[0].raw == 0.8
    pty_sensor.send(FRAMES[1][:6] + b"\x13\xaa" + FRAMES[7])
    with pytest.raises(FrameError):
        sds.read()
    assert sds.read()[0].raw == 0.8
    with pytest.raises(SensorSilent, match="no data"):
        sds.read()
    sds.close()


def test_periodic_mode_waits_a_period_before_calling_it_silent(
    pty_sensor: PtySensor, clock: FakeClock
) -> None:
    sds = driver(pty_sensor, clock, work_period_min=2)
    assert sds.read() == []
    clock.advance(150)
    assert sds.read() == []
    pty_sensor.send(FRAMES[1])
    assert sds.read()[0].raw == 0.9
    clock.advance(181)
    with pytest.raises(SensorSilent, match="for 2 min"):
        sds.read()
    sds.close()


def test_unplugged_and_back_it_is_woken_again(pty_sensor: PtySensor, clock: FakeClock) -> None:
    sds = driver(pty_sensor, clock)
    pty_sensor.unplug()
    with pytest.raises(PortGone):
        sds.read()
    pty_sensor.plug()
    with pty_sensor.streaming([FRAMES[7]]):
        assert sds.read()[0].raw == 0.8
    assert WAKE in pty_sensor.drain()
    sds.close()


def test_sigterm_puts_the_sensor_to_sleep_and_closes_the_port(tmp_path: Path, pty_sensor: PtySensor) -> None:
    cfg = node_toml(
        tmp_path / "node.toml",
        site="s",
        node="n",
        port=free_port(),
        prefix="mw",
        sensors=f'[[sensors]]\ntype = "sds011"\nport = "{pty_sensor.path}"\n',
    )
    node = spawn(["node.cli", "run", "--config", str(cfg)], tmp_path / "node.log")
    try:
        with pty_sensor.streaming(FRAMES, period_s=0.2):
            assert pty_sensor.received(38, timeout_s=30) == WAKE + working_period(0)
            wait_for(lambda: "1 sensor(s)" in (tmp_path / "node.log").read_text(), 30, "the node")
            node.send_signal(signal.SIGTERM)
            assert node.wait(15) == 0
            assert pty_sensor.received(19, timeout_s=5) == SLEEP
    finally:
        if node.poll() is None:
            node.kill()
    open_serial(pty_sensor.path).close()  # released: an exclusive open succeeds
