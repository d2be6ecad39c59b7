"""Each real sensor's keys are validated by its own options model; mistakes name the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from contract.configfile import ConfigError
from node.config import load

HEAD = 'site = "s"\nnode = "n"\n[[sensors]]\n'


@pytest.mark.parametrize(
    ("sensor", "expected"),
    [
        (
            'type = "sds011"\nwork_period_min = 31',
            "sensors[0].work_period_min: 31 is too large: it must be 30 or less",
        ),
        ('type = "pms5003"\nbaud = 9600', "sensors[0].baud: unknown key"),
        ('type = "turbidity-ads1115"\nchannel = 4', "sensors[0].channel: 4 is not one of 0, 1, 2 or 3"),
        ('type = "turbidity-ads1115"\ngain = 3', "sensors[0].gain: Value error, gain must be one of"),
        (
            'type = "turbidity-ads1115"\ndivider = 0.5',
            "sensors[0].divider: 0.5 is too small: it must be 1 or more",
        ),
        (
            'type = "bme280"\naddress = 0x50',
            "sensors[0].address: 0x50 is not an address this part answers on: use 0x76 or 0x77",
        ),
        ('type = "bme280"\naddress = "76"', "sensors[0].address: 0x4c is not an address this part"),
        ('type = "sht4x"\naddress = "0x"', "sensors[0].address: '0x' is not an I2C address"),
        ('type = "pms5004"', "sensors[0].type: 'pms5004' is not a type we know (did you mean 'pms5003'?)"),
        ('port = "/dev/serial0"', "sensors[0].type: missing: every table here says which kind"),
        (
            'type = "turbidity-modbus"\npreset = "acme"',
            "sensors[0].preset: 'acme' is not one of 'dfrobot-sen0710'",
        ),
        (
            'type = "turbidity-modbus"\nregister = 1\ndata_type = "float64"',
            "sensors[0].data_type: 'float64' is not one of",
        ),
        ('type = "ds18b20"\ndevice = "10-abc"', "sensors[0].device: '10-abc' does not fit this key's form"),
        (
            'type = "sht4x"\nstuck_after_s = 0',
            "sensors[0].stuck_after_s: 0 is too small: it must be more than 0",
        ),
    ],
)
def test_driver_keys_are_checked_with_their_place(tmp_path: Path, sensor: str, expected: str) -> None:
    path = tmp_path / "node.toml"
    path.write_text(HEAD + sensor + "\n")
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert f"{path}: {expected}" in str(caught.value)


def test_loading_a_config_opens_no_port(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(HEAD + f'type = "pms5003"\nport = "{tmp_path / "nothing"}"\n')
    assert load(path).sensors[0].type == "pms5003"  # validated without touching the device


@pytest.mark.parametrize("written", ['"0x76"', "0x76", "118", '"0X76"'])
def test_an_i2c_address_is_taken_as_a_datasheet_writes_it(tmp_path: Path, written: str) -> None:
    path = tmp_path / "node.toml"
    path.write_text(HEAD + f'type = "bme280"\naddress = {written}\n')
    assert load(path).sensors[0].address == 0x76  # type: ignore[attr-defined]


def test_an_unknown_sensor_type_lists_the_known_ones(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(HEAD + 'type = "dht22"\n')
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert "use one of: bme280, ds18b20, pms5003, pmsa003i, replay-csv, sds011, sht4x, simulated-pm" in str(
        caught.value
    )
