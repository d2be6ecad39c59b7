"""Sensor drivers. Importing the package registers every driver module in it (see base.register)."""

from __future__ import annotations

import importlib
import pkgutil

from contract.metrics import Metric
from hardware.base import REGISTRY, Sample, SensorDriver, SensorOptions, open_driver

_NOT_DRIVERS = {"base", "ports"}

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in _NOT_DRIVERS and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["REGISTRY", "Metric", "Sample", "SensorDriver", "SensorOptions", "open_driver"]
