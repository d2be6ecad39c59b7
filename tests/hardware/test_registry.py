"""The driver registry: `hardware.DRIVERS` names every driver module of the package, and a node
imports only the drivers its node.toml names (a Pi Zero's 512 MB should not hold the others)."""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import hardware
from tests.helpers import ROOT

NOT_DRIVERS = {"base", "ports"}


def _driver_modules() -> set[str]:
    return {
        m.name
        for m in pkgutil.iter_modules(hardware.__path__)
        if m.name not in NOT_DRIVERS and not m.name.startswith("_")
    }


def test_the_table_names_each_type_with_the_module_that_registers_it() -> None:
    registered = {name: cls.__module__ for name, cls in hardware.load_all().items()}
    assert registered == {name: f"hardware.{module}" for name, module in hardware.DRIVERS.items()}


def test_every_driver_module_is_in_the_table() -> None:
    assert _driver_modules() == set(hardware.DRIVERS.values())  # a new file needs its line


def _modules_after_loading(tmp_path: Path, sensors: str) -> set[str]:
    """The modules a fresh interpreter holds after loading a node.toml with these sensors."""
    path = tmp_path / "node.toml"
    path.write_text(f'site = "s"\nnode = "n"\n{sensors}')
    code = (
        "import sys, json; import node.cli, node.commands.run; from node.config import load; "
        f"load({str(path)!r}); print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True
    )
    return set(json.loads(done.stdout))


def test_a_node_imports_only_the_drivers_it_names(tmp_path: Path) -> None:
    loaded = _modules_after_loading(tmp_path, f'[[sensors]]\ntype = "pms5003"\nport = "{tmp_path / "tty"}"\n')
    drivers = {m.removeprefix("hardware.") for m in loaded if m.startswith("hardware.")} & _driver_modules()
    assert drivers == {"pms5003"}
    libraries = {m.split(".")[0] for m in loaded}
    assert {"adafruit_pm25", "serial"} <= libraries  # the PMS5003's own
    assert not {"adafruit_bme280", "adafruit_sht4x", "adafruit_ads1x15", "minimalmodbus"} & libraries


def test_two_sensor_types_import_both_drivers(tmp_path: Path) -> None:
    loaded = _modules_after_loading(
        tmp_path, '[[sensors]]\ntype = "simulated-pm"\n[[sensors]]\ntype = "bme280"\nbus = 1\n'
    )
    drivers = {m.removeprefix("hardware.") for m in loaded if m.startswith("hardware.")} & _driver_modules()
    assert drivers == {"simulated", "bme280"}


def test_known_types_come_from_the_table_without_importing_a_driver() -> None:
    code = (
        "import sys, json, hardware; loaded = [m for m in sys.modules if m.startswith('hardware.')]; "
        "print(json.dumps([hardware.known_types(), loaded]))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=ROOT, check=True
    )
    types, modules = json.loads(done.stdout)
    assert types == sorted(hardware.DRIVERS)
    assert set(modules) == {"hardware.base"}
