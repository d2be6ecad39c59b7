"""The node applies its calibrations in the sampler, with a simulated clock: RH from the same window,
fallback and expiry flagged, and unusable files refused at start-up naming the file."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calibration import presets
from contract.configfile import ConfigError
from contract.flags import Flag
from contract.metrics import Metric
from hardware.replay_csv import ReplayCsv, ReplayCsvOptions
from hardware.simulated import SimulatedPm, SimulatedPmOptions
from node.calibration import NodeCalibration
from node.config import load
from node.sampler import Sampler, SensorSpec
from tests.fakes.clock import FakeClock

T0 = datetime(2026, 11, 22, 10, 0, 0, tzinfo=UTC)


def cal_file(path: Path, *, valid_to: str = "2027-01-01T00:00:00Z", type_: str = "simulated-pm") -> Path:
    path.write_text(
        f'id = "sim-a@2026-11-01"\nmetric = "pm2_5"\nmodel = "linear"\n'
        f"valid_from = 2026-11-01T00:00:00Z\nvalid_to = {valid_to}\n"
        f'[sensor]\ntype = "{type_}"\n[coefficients]\nslope = 0.5\nintercept = 2.0\n'
        f'[provenance]\nmethod = "test"\n'
    )
    return path


def replay(tmp_path: Path, rows: list[str]) -> ReplayCsv:
    csv = tmp_path / "rec.csv"
    csv.write_text("\n".join(rows) + "\n")
    opts = ReplayCsvOptions(type="replay-csv", path=csv, chunk_s=60)
    return ReplayCsv.open(opts, lambda: T0)


def test_the_epa_preset_uses_rh_from_the_same_window(tmp_path: Path) -> None:
    clock = FakeClock(T0 + timedelta(hours=1))
    opts = ReplayCsvOptions(type="replay-csv", path=tmp_path / "x.csv", calibration=["epa-us-2021"])
    calibrate = NodeCalibration.start([opts], clock)
    driver = replay(
        tmp_path,
        [
            "timestamp,pm2_5,rh",
            "2026-11-22T10:00:10Z,20,30",
            "2026-11-22T10:00:20Z,40,50",
            "2026-11-22T10:01:10Z,20,",
        ],
    )
    sampler = Sampler([SensorSpec("rec", driver, 1.0)], 60, clock, calibrate=calibrate)
    readings = []
    for _ in range(3):
        readings += sampler.tick(clock())
        clock.now += timedelta(seconds=1)
    first, second = readings[0], readings[1]
    pm = first.metrics[Metric.PM2_5]
    assert (pm.raw, pm.cal) == (30.0, "epa-us-2021")
    assert pm.value == round(0.524 * 30 - 0.0862 * 40 + 5.75, 4)
    assert first.metrics[Metric.RH].cal is None and first.metrics[Metric.RH].value == 40.0
    assert first.flags == frozenset()
    # no RH in the second window: the documented 50 % is assumed and the reading says so
    assert second.metrics[Metric.PM2_5].value == round(0.524 * 20 - 0.0862 * 50 + 5.75, 4)
    assert second.flags == {Flag.CAL_FALLBACK}


def test_a_calibration_that_expires_while_running_is_flagged_not_silently_used(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(datetime(2026, 12, 31, 23, 58, tzinfo=UTC))
    cal = cal_file(tmp_path / "cal.toml")
    sim = SimulatedPmOptions(type="simulated-pm", noise=0.0, daily_amplitude=0.0, baseline=10.0)
    calibrate = NodeCalibration.start([sim.model_copy(update={"calibration": [str(cal)]})], clock)
    sampler = Sampler([SensorSpec("pm", SimulatedPm(sim, clock), 1.0)], 60, clock, calibrate=calibrate)
    readings = []
    with caplog.at_level(logging.WARNING):
        for _ in range(6 * 60):
            readings += sampler.tick(clock())
            clock.now += timedelta(seconds=1)
    assert len(readings) >= 5
    for reading in readings:
        pm = reading.metrics[Metric.PM2_5]
        assert pm.value == 7.0 and pm.cal == "sim-a@2026-11-01"  # 0.5·10 + 2, still calibrated units
        assert (Flag.CAL_EXPIRED in reading.flags) == (reading.ts >= datetime(2027, 1, 1, tzinfo=UTC))
        assert reading.metrics[Metric.PM10].cal is None  # no calibration for pm10: passed through
    assert any(Flag.CAL_EXPIRED in r.flags for r in readings)
    assert sum("expired" in r.message for r in caplog.records) == 1  # logged once, not per reading


def test_start_refuses_a_calibration_outside_its_dates(tmp_path: Path) -> None:
    cal = cal_file(tmp_path / "old.toml", valid_to="2026-11-02T00:00:00Z")
    sim = SimulatedPmOptions(type="simulated-pm", calibration=[str(cal)])
    with pytest.raises(
        ConfigError,
        match=r"sensors\[0\]\.calibration\[0\]: .*old\.toml: calibration 'sim-a@2026-11-01' is valid from",
    ):
        NodeCalibration.start([sim], FakeClock(T0))
    with pytest.raises(ConfigError, match="not now"):
        NodeCalibration.start([sim], FakeClock(datetime(2026, 10, 1, tzinfo=UTC)))


def node_toml(tmp_path: Path, sensors: str) -> Path:
    path = tmp_path / "node.toml"
    path.write_text(f'site = "s"\nnode = "n"\n[buffer]\npath = "outbox.sqlite"\n{sensors}')
    return path


@pytest.mark.parametrize(
    ("sensors", "message"),
    [
        (
            '[[sensors]]\ntype = "simulated-turbidity"\ncalibration = ["cal/a.toml"]\n',
            "is for sensor type simulated-pm, not 'simulated-turbidity'",
        ),
        (
            '[[sensors]]\ntype = "simulated-pm"\ncalibration = ["dfrobot-sen0189"]\n',
            "is for sensor type turbidity-ads1115 or replay-csv, not 'simulated-pm'",
        ),
        (
            '[[sensors]]\ntype = "simulated-pm"\ncalibration = ["cal/a.toml", "epa-us-2021"]\n',
            "sensors[0].calibration[1]: ",
        ),
        ('[[sensors]]\ntype = "simulated-pm"\ncalibration = ["cal/missing.toml"]\n', "cannot read"),
    ],
)
def test_node_config_refuses_unusable_calibrations_naming_both_files(
    tmp_path: Path, sensors: str, message: str
) -> None:
    (tmp_path / "cal").mkdir()
    cal_file(tmp_path / "cal" / "a.toml")
    with pytest.raises(ConfigError) as err:
        load(node_toml(tmp_path, sensors))
    text = str(err.value)
    assert text.startswith(f"{tmp_path / 'node.toml'}: sensors[0].calibration[")
    assert message in text


def test_wrong_metric_for_the_sensor_is_refused(tmp_path: Path) -> None:
    cal = cal_file(tmp_path / "t.toml").read_text().replace('"pm2_5"', '"turbidity"')
    (tmp_path / "t.toml").write_text(cal)
    with pytest.raises(ConfigError, match="calibrates turbidity, which a simulated-pm does not report"):
        load(node_toml(tmp_path, '[[sensors]]\ntype = "simulated-pm"\ncalibration = ["t.toml"]\n'))


def test_relative_calibration_paths_are_relative_to_the_config_and_presets_stay_names(
    tmp_path: Path,
) -> None:
    (tmp_path / "cal").mkdir()
    cal_file(tmp_path / "cal" / "a.toml")
    cfg = load(
        node_toml(
            tmp_path,
            '[[sensors]]\ntype = "simulated-pm"\ncalibration = ["cal/a.toml"]\n'
            '[[sensors]]\ntype = "replay-csv"\npath = "r.csv"\ncalibration = []\n',
        )
    )
    assert cfg.sensors[0].calibration == [str(tmp_path / "cal" / "a.toml")]
    assert presets.path("epa-us-2021") is not None


def test_window_inputs_are_used_as_they_are_stored_so_apply_can_reproduce_the_value() -> None:
    calibrate = NodeCalibration({Metric.PM2_5: presets.load_preset("epa-us-2021")}, FakeClock(T0))
    # a window mean the node stores as rh_raw = 30.395; with the unrounded mean the value would
    # round to 13.6099 instead of 13.61, and apply on the stored rh_raw could not reproduce it
    rh = 30.39503975
    value, cal, flags = calibrate(Metric.PM2_5, 20.0, {Metric.PM2_5: 20.0, Metric.RH: rh})
    assert (cal, flags) == ("epa-us-2021", set())
    assert value == presets.load_preset("epa-us-2021").apply(20.0, rh=round(rh, 4)).value
    assert value == 13.61
