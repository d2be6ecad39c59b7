"""I2C drivers against register-map fakes: the adafruit libraries' own protocol and conversion code
runs, so the values checked here are the datasheets' worked examples."""

from __future__ import annotations

from pathlib import Path

import pytest
from adafruit_sht4x import SHT4x

from contract.metrics import Metric
from hardware.base import FrameError, SensorSilent
from hardware.bme280 import Bme280, Bme280Options
from hardware.ds18b20 import Ds18b20, Ds18b20Options
from hardware.pmsa003i import Pmsa003i, Pmsa003iOptions
from hardware.sht4x import Sht4x, Sht4xOptions
from hardware.turbidity_ads1115 import TurbidityAds1115, TurbidityAds1115Options, sen0189_ntu
from tests.fakes import i2c
from tests.fakes.clock import FakeClock
from tests.fakes.frames import corrupt, load


def values(samples: list) -> dict[Metric, float]:
    return {s.metric: s.raw for s in samples}


def test_bme280_gives_the_datasheet_example_and_survives_a_pulled_wire(clock: FakeClock) -> None:
    bus, chip = i2c.FakeI2CBus(), i2c.Bme280()
    # BME280 datasheet 8.1 worked example: trimming T1..T3, P1..P9 and adc_T = 519888, adc_P = 415148
    chip.calibrate(
        (27504, 26435, -1000),
        (36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000),
        (75, 370, 0, 313, 50, 30),
    )
    chip.set_adc(519888, 415148, 27000)
    bus.devices[0x76] = chip
    bme = Bme280(Bme280Options(type="bme280"), bus, clock)
    got = values(bme.read())
    assert got[Metric.AIR_TEMP] == pytest.approx(25.08, abs=0.01)
    assert got[Metric.PRESSURE] == pytest.approx(1006.53, abs=0.01)  # 100653.27 Pa in the datasheet
    assert got[Metric.RH] == pytest.approx(39.11, abs=0.01)  # Bosch's integer formula gives 39.113
    bus.unplugged.add(0x76)
    with pytest.raises(SensorSilent, match="no device at 0x76 on I2C bus 1"):
        bme.read()
    bus.unplugged.clear()
    assert values(bme.read())[Metric.AIR_TEMP] == pytest.approx(25.08, abs=0.01)
    bme.close()


def test_a_bmp280_is_refused_with_a_hint(clock: FakeClock) -> None:
    bus = i2c.FakeI2CBus()
    bus.devices[0x76] = i2c.Bme280(chip_id=0x58)
    with pytest.raises(FrameError, match="BMP280 has no humidity"):
        Bme280(Bme280Options(type="bme280"), bus, clock).read()


def test_sht4x_conversion_and_crc(clock: FakeClock) -> None:
    assert SHT4x._crc8(b"\xbe\xef") == 0x92  # the CRC check value in the SHT4x datasheet, 4.4
    bus, chip = i2c.FakeI2CBus(), i2c.Sht4x()
    chip.set(21.5, 48.25)
    bus.devices[0x44] = chip
    sht = Sht4x(Sht4xOptions(type="sht4x"), bus, clock)
    got = values(sht.read())
    assert got[Metric.AIR_TEMP] == pytest.approx(21.5, abs=0.01)
    assert got[Metric.RH] == pytest.approx(48.25, abs=0.01)
    chip.bad_crc = True
    with pytest.raises(FrameError, match="CRC"):
        sht.read()
    sht.close()


def test_ads1115_volts_through_the_divider_and_the_sen0189_curve(clock: FakeClock) -> None:
    bus, adc = i2c.FakeI2CBus(), i2c.Ads1115()
    adc.volts[1] = 2.0  # 3.0 V at the probe behind a 1.5 divider
    bus.devices[0x48] = adc
    opts = TurbidityAds1115Options(type="turbidity-ads1115", channel=1, gain=1, divider=1.5)
    probe = TurbidityAds1115(opts, bus, clock)
    assert values(probe.read())[Metric.TURBIDITY] == pytest.approx(3.0, abs=0.001)
    assert not adc.is_continuous and (adc.regs[1] >> 9) & 0x7 == 1  # single-shot at ±4.096 V
    adc.volts[1] = 2.5
    assert values(probe.read())[Metric.TURBIDITY] == pytest.approx(3.75, abs=0.001)
    assert probe.raw_range[Metric.TURBIDITY][1] == pytest.approx(4.096 * 1.5 * 0.999, abs=1e-4)
    # DFRobot's SEN0189 curve: ~3000 NTU at 2.5 V, ~0 NTU at 4.2 V; undefined outside
    assert sen0189_ntu(2.5) == pytest.approx(3000.35, abs=0.01)
    assert sen0189_ntu(4.2) == pytest.approx(0.904, abs=0.001)
    assert sen0189_ntu(4.3) is None and sen0189_ntu(1.0) is None
    with pytest.raises(ValueError, match="gain must be one of"):
        TurbidityAds1115Options(type="turbidity-ads1115", gain=3)


def test_ads1115_absent_then_present(clock: FakeClock) -> None:
    bus = i2c.FakeI2CBus()
    probe = TurbidityAds1115(TurbidityAds1115Options(type="turbidity-ads1115"), bus, clock)
    with pytest.raises(SensorSilent, match="no device at 0x48"):
        probe.read()
    bus.devices[0x48] = adc = i2c.Ads1115()
    adc.volts[0] = 4.0
    assert values(probe.read())[Metric.TURBIDITY] == pytest.approx(4.0, abs=0.001)


def test_pmsa003i_frames_warm_up_and_bad_checksum(clock: FakeClock) -> None:
    frames, zero = load("pms5003"), load("pms5003-warmup")[0]
    bus, chip = i2c.FakeI2CBus(), i2c.Pmsa003i(zero)
    bus.devices[0x12] = chip
    pm = Pmsa003i(Pmsa003iOptions(type="pmsa003i"), bus, clock)
    assert pm.read() == []  # fan spinning up
    chip.frame = frames[0]
    assert values(pm.read())[Metric.PC0_3] == 210
    chip.frame = corrupt(frames[0])
    with pytest.raises(FrameError, match="checksum"):
        pm.read()
    clock.advance(30)
    chip.frame = zero
    with pytest.raises(FrameError, match="all-zero"):
        pm.read()
    bus.unplugged.add(0x12)
    with pytest.raises(SensorSilent, match="0x12"):
        pm.read()


def w1_slave(directory: Path, device: str, text: str) -> None:
    (directory / device).mkdir(parents=True, exist_ok=True)
    (directory / device / "w1_slave").write_text(text)


def test_ds18b20_sysfs(tmp_path: Path, clock: FakeClock) -> None:
    opts = Ds18b20Options(type="ds18b20", devices_dir=tmp_path)
    probe = Ds18b20(opts, clock)
    with pytest.raises(SensorSilent, match="no DS18B20"):
        probe.read()
    w1_slave(
        tmp_path,
        "28-00000a1b2c3d",
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 YES\n72 01 4b 46 7f ff 0e 10 57 t=23125\n",
    )
    assert values(probe.read()) == {Metric.WATER_TEMP: 23.125}
    w1_slave(
        tmp_path,
        "28-00000a1b2c3d",
        "72 01 4b 46 7f ff 0e 10 57 : crc=57 NO\n72 01 4b 46 7f ff 0e 10 57 t=23125\n",
    )
    with pytest.raises(FrameError, match="CRC"):
        probe.read()
    w1_slave(
        tmp_path,
        "28-00000a1b2c3d",
        "50 05 4b 46 7f ff 0c 10 1c : crc=1c YES\n50 05 4b 46 7f ff 0c 10 1c t=85000\n",
    )
    with pytest.raises(FrameError, match="power-on value"):
        probe.read()
    w1_slave(tmp_path, "28-00000a1b2c3e", "ff ff ff ff ff ff ff ff ff : crc=c9 YES\nff ff t=-1250\n")
    with pytest.raises(SensorSilent, match="set `device`"):
        probe.read()
    chosen = Ds18b20(Ds18b20Options(type="ds18b20", devices_dir=tmp_path, device="28-00000a1b2c3e"), clock)
    assert values(chosen.read()) == {Metric.WATER_TEMP: -1.25}
