"""Each metric of a node comes from one sensor, and a calibration corrects only the sensor it is for.

Through the real CLI (`minewatch-node check`, `minewatch-node run`) with real files: two PMS units,
or a BME280 beside an SHT4x, are refused naming the file, both sensors' keys and a way out (exit 2);
a `metric = "pm2_5"` calibration labelled for `turbidity-modbus` is refused naming the file and its
key instead of correcting the SDS011 beside it. With the `metrics` key the BME280 gives only its
pressure: the real drivers, fed at the byte boundary (register maps), show the reading's RH and
temperature are the SHT4x's own, not a mean of the two."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from contract.metrics import Metric
from hardware.bme280 import Bme280, Bme280Options
from hardware.sht4x import Sht4x, Sht4xOptions
from node.cli import main
from node.config import load
from node.sampler import Sampler
from node.service import sensor_spec
from tests.fakes import i2c
from tests.fakes.clock import FakeClock
from tests.fakes.pty import PtySensor
from tests.helpers import ROOT


def _node_toml(path: Path, sensors: str) -> Path:
    path.write_text(f'site = "s"\nnode = "n"\n[buffer]\npath = "outbox.sqlite"\n{sensors}')
    return path


def _check(cfg: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["check", "--config", str(cfg), "--seconds", "0.5"])
    return code, capsys.readouterr().err


def test_two_pms_units_on_one_node_are_refused_naming_both(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = PtySensor(tmp_path, "ttyAMA0"), PtySensor(tmp_path, "ttyUSB0")
    try:
        cfg = _node_toml(
            tmp_path / "node.toml",
            f'[[sensors]]\ntype = "pms5003"\nport = "{a.path}"\n'
            f'[[sensors]]\ntype = "pms5003"\nname = "second-pms"\nport = "{b.path}"\n',
        )
        code, err = _check(cfg, capsys)
        assert code == 2
        assert f"{cfg}: sensors[1] (second-pms, pms5003): reports pm1_0, and so does sensors[0]" in err
        assert "would average the two sensors" in err
        assert "another `node` id" in err, "the way out: a node of its own"
        assert a.drain() == b.drain() == b"", "refused before any port was opened"
    finally:
        a.close()
        b.close()


def test_a_bme280_beside_an_sht4x_is_refused_with_the_metrics_key_to_use(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = _node_toml(tmp_path / "node.toml", '[[sensors]]\ntype = "sht4x"\n[[sensors]]\ntype = "bme280"\n')
    code, err = _check(cfg, capsys)
    assert code == 2
    assert (
        f"{cfg}: sensors[1] (bme280, bme280): reports air_temp, and so does sensors[0] (sht4x, sht4x)" in err
    )
    assert 'give sensors[1] the key metrics = ["pressure"]' in err
    # the suggested key, but naming what a BME280 cannot measure: refused too
    cfg.write_text(cfg.read_text() + 'metrics = ["pressure", "pm2_5"]\n')
    code, err = _check(cfg, capsys)
    assert code == 2 and f"{cfg}: sensors[1].metrics: pm2_5: a bme280 does not report it" in err


def test_with_the_metrics_key_each_metric_is_one_sensors_own(tmp_path: Path, clock: FakeClock) -> None:
    cfg = load(
        _node_toml(
            tmp_path / "node.toml",
            '[[sensors]]\ntype = "sht4x"\n[[sensors]]\ntype = "bme280"\nmetrics = ["pressure"]\n',
        )
    )
    bus, sht, bme = i2c.FakeI2CBus(), i2c.Sht4x(), i2c.Bme280()
    sht.set(21.5, 48.25)
    # BME280 datasheet 8.1 worked example: 25.08 °C, 1006.53 hPa, 39.11 % RH
    bme.calibrate(
        (27504, 26435, -1000),
        (36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000),
        (75, 370, 0, 313, 50, 30),
    )
    bme.set_adc(519888, 415148, 27000)
    bus.devices[0x44], bus.devices[0x76] = sht, bme
    sht_opts, bme_opts = cfg.sensors
    assert isinstance(sht_opts, Sht4xOptions) and isinstance(bme_opts, Bme280Options)
    drivers = [Sht4x(sht_opts, bus, clock), Bme280(bme_opts, bus, clock)]
    sampler = Sampler([sensor_spec(o, d) for o, d in zip(cfg.sensors, drivers, strict=True)], 60, clock)
    readings = []
    for _ in range(70):
        readings += sampler.tick(clock())
        clock.advance(1)
    metrics = readings[0].metrics
    assert set(metrics) == {Metric.AIR_TEMP, Metric.RH, Metric.PRESSURE}
    assert metrics[Metric.RH].raw == pytest.approx(48.25, abs=0.01), "the SHT4x's, not a mean with 39.11"
    assert metrics[Metric.AIR_TEMP].raw == pytest.approx(21.5, abs=0.01)
    assert metrics[Metric.PRESSURE].raw == pytest.approx(1006.53, abs=0.01)
    assert metrics[Metric.RH].n == metrics[Metric.PRESSURE].n, "one sample of each per read"


def _wrong_sensor_calibration(path: Path) -> Path:
    """A PM2.5 calibration labelled for a turbidity probe: before, it loaded and the node looked
    calibrations up by metric, so it corrected the SDS011's pm2_5."""
    path.write_text(
        'id = "river-a@2026-11-01"\nmetric = "pm2_5"\nmodel = "linear"\n'
        "valid_from = 2026-11-01T00:00:00Z\n"
        '[sensor]\ntype = "turbidity-modbus"\n[coefficients]\nslope = 0.5\nintercept = 2.0\n'
        '[provenance]\nmethod = "test"\n'
    )
    return path


def test_a_calibration_for_a_metric_its_sensor_does_not_report_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cal = _wrong_sensor_calibration(tmp_path / "river-a.toml")
    sds, probe = PtySensor(tmp_path, "ttyUSB0"), PtySensor(tmp_path, "ttyUSB1")
    try:
        cfg = _node_toml(
            tmp_path / "node.toml",
            f'[[sensors]]\ntype = "sds011"\nport = "{sds.path}"\n'
            f'[[sensors]]\ntype = "turbidity-modbus"\nport = "{probe.path}"\npreset = "dfrobot-sen0710"\n'
            'calibration = ["river-a.toml"]\n',
        )
        code, err = _check(cfg, capsys)
        assert code == 2
        assert (
            f"{cfg}: sensors[1].calibration[0]: {cal}: metric: calibrates pm2_5, which a turbidity-modbus"
            in err
        )
        assert "would correct another sensor's values" in err
        # the node's own start refuses it the same way, before any port opens
        run = subprocess.run(
            [sys.executable, "-m", "node.cli", "run", "--config", str(cfg)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert run.returncode == 2
        assert f"sensors[1].calibration[0]: {cal}: metric: calibrates pm2_5" in run.stderr
        assert sds.drain() == probe.drain() == b""
        # moved to the SDS011, it is refused for its label
        cfg.write_text(cfg.read_text().replace('calibration = ["river-a.toml"]\n', ""))
        cfg.write_text(
            cfg.read_text().replace(
                f'port = "{sds.path}"\n', f'port = "{sds.path}"\ncalibration = ["river-a.toml"]\n'
            )
        )
        code, err = _check(cfg, capsys)
        assert code == 2 and f"sensors[0].calibration[0]: {cal}: is for sensor type turbidity-modbus" in err
    finally:
        sds.close()
        probe.close()
