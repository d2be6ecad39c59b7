"""Sensor drivers, one module per driver, found by name.

`DRIVERS` says which module of this package registers each sensor `type` (see base.register). A
driver's module is imported the first time its type is asked for (`driver_class`), so a node
loads only the drivers its node.toml names: each brings its options model and often a
CircuitPython library, which a 512 MB Pi should not hold for parts it does not have. Listings
(`known_types`, an unknown type's error) read the table without importing anything; `load_all`
imports every driver, for code that needs their classes (tests/hardware/test_registry.py checks the
table against what each module registers).
"""

from __future__ import annotations

import importlib
from typing import Any

from contract.metrics import Metric
from hardware.base import REGISTRY, Sample, SensorDriver, SensorOptions, open_driver

DRIVERS: dict[str, str] = {
    "bme280": "bme280",
    "ds18b20": "ds18b20",
    "pms5003": "pms5003",
    "pmsa003i": "pmsa003i",
    "replay-csv": "replay_csv",
    "sds011": "sds011",
    "sht4x": "sht4x",
    "simulated-pm": "simulated",
    "simulated-turbidity": "simulated",
    "turbidity-ads1115": "turbidity_ads1115",
    "turbidity-modbus": "turbidity_modbus",
}
"""Sensor `type` -> the module of this package that registers its driver."""


def known_types() -> list[str]:
    """Every sensor type a node.toml may name, sorted: the table's and any registered elsewhere
    (a bench's own driver), without importing a driver."""
    return sorted(DRIVERS.keys() | REGISTRY.keys())


def driver_class(type_name: str) -> type[Any]:
    """The driver class of a sensor type, importing its module on first use; KeyError for a type
    no driver has (`known_types` lists them)."""
    if type_name not in REGISTRY and type_name in DRIVERS:
        importlib.import_module(f"{__name__}.{DRIVERS[type_name]}")
    return REGISTRY[type_name]


def load_all() -> dict[str, type[Any]]:
    """Import every driver; sensor type -> driver class, sorted by type."""
    return {name: driver_class(name) for name in known_types()}


__all__ = [
    "DRIVERS",
    "REGISTRY",
    "Metric",
    "Sample",
    "SensorDriver",
    "SensorOptions",
    "driver_class",
    "known_types",
    "load_all",
    "open_driver",
]
