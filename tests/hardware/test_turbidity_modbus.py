"""The Modbus turbidity driver through minimalmodbus on a pty, against a fake slave whose answers
carry a real CRC."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from contract.configfile import ConfigError
from contract.metrics import Metric
from hardware.base import FrameError, PortGone, SensorSilent
from hardware.ports import open_modbus
from hardware.turbidity_modbus import TurbidityModbus, TurbidityModbusOptions
from node.config import load
from tests.fakes.clock import FakeClock
from tests.fakes.modbus import ModbusSlave, crc
from tests.fakes.pty import PtySensor


@pytest.fixture
def slave(pty_sensor: PtySensor) -> Iterator[ModbusSlave]:
    # DFRobot SEN0710 map: 0x0000 NTU x 10 (u16), 0x0001 °C x 10 (i16): 12.3 NTU at -1.5 °C
    fake = ModbusSlave(pty_sensor, 1, {0: 123, 1: (-15) & 0xFFFF, 10: 0x4148, 11: 0x0000})
    yield fake
    fake.stop()


def probe(pty: PtySensor, clock: FakeClock, **kw: object) -> TurbidityModbus:
    opts = TurbidityModbusOptions.model_validate(
        {"type": "turbidity-modbus", "port": pty.path, "timeout_s": 0.3, **kw}
    )
    slave_id, baud, parity = opts.link()
    return TurbidityModbus(opts, open_modbus(opts.port, slave_id, baud, parity=parity, timeout_s=0.3), clock)


def test_crc_helper_matches_the_modbus_spec_example() -> None:
    assert crc(bytes.fromhex("010300000001")) == bytes.fromhex("840a")


def test_the_sen0710_preset_reads_ntu_and_water_temperature(
    pty_sensor: PtySensor, slave: ModbusSlave, clock: FakeClock
) -> None:
    sensor = probe(pty_sensor, clock, preset="dfrobot-sen0710")
    got = {s.metric: s.raw for s in sensor.read()}
    assert got == {Metric.TURBIDITY: 12.3, Metric.WATER_TEMP: -1.5}
    assert slave.requests[0] == bytes.fromhex("010300000001") + crc(bytes.fromhex("010300000001"))
    sensor.close()


def test_a_float32_register_with_function_4(
    pty_sensor: PtySensor, slave: ModbusSlave, clock: FakeClock
) -> None:
    sensor = probe(pty_sensor, clock, register=10, data_type="float32", function_code=4)
    assert [(s.metric, s.raw) for s in sensor.read()] == [(Metric.TURBIDITY, 12.5)]  # 0x41480000
    assert slave.requests[0][1] == 4
    sensor.close()


@pytest.mark.parametrize(
    ("mode", "error", "message"),
    [
        ("silent", SensorSilent, "no Modbus answer from slave 1"),
        ("bad_crc", FrameError, "bad Modbus answer"),
        ("exception", FrameError, "refused register 0"),
    ],
)
def test_faults_become_the_right_errors(
    pty_sensor: PtySensor, slave: ModbusSlave, clock: FakeClock, mode: str, error: type, message: str
) -> None:
    sensor = probe(pty_sensor, clock, preset="dfrobot-sen0710")
    slave.mode = mode
    with pytest.raises(error, match=message):
        sensor.read()
    slave.mode = "ok"
    assert sensor.read()[0].raw == 12.3  # and the next read is fine
    sensor.close()


def test_the_adapter_pulled_and_plugged_back(
    pty_sensor: PtySensor, slave: ModbusSlave, clock: FakeClock
) -> None:
    sensor = probe(pty_sensor, clock, preset="dfrobot-sen0710")
    pty_sensor.unplug()
    with pytest.raises(PortGone, match="vanished"):
        sensor.read()
    with pytest.raises(PortGone, match="does not exist"):
        sensor.read()
    pty_sensor.plug()
    assert sensor.read()[0].raw == 12.3
    sensor.close()


def test_a_config_without_register_or_preset_names_the_key(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text('site = "s"\nnode = "n"\n[[sensors]]\ntype = "turbidity-modbus"\n')
    with pytest.raises(ConfigError, match=r"sensors\[0\].*give `register`"):
        load(path)
    path.write_text(
        'site = "s"\nnode = "n"\n[[sensors]]\ntype = "turbidity-modbus"\nregister = 4\nslave = 300\n'
    )
    with pytest.raises(ConfigError, match=r"sensors\[0\]\.slave"):
        load(path)
