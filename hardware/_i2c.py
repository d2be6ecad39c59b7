"""The part of every I2C driver that is not about the part: open the bus once, build the adafruit
library object when the device answers, and build it again after the device stopped answering (it
may have lost power and its settings). Errors say where to look."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Generic, TypeVar

from hardware.base import PortGone, SensorError, SensorSilent
from hardware.ports import I2CBus, open_i2c

T = TypeVar("T")


class I2CPart(Generic[T]):
    def __init__(
        self, bus_number: int, address: int, bus: I2CBus | None, make: Callable[[I2CBus, int], T]
    ) -> None:
        self.bus_number, self.address = bus_number, address
        self._bus, self._make = bus, make
        self._part: T | None = None

    def get(self) -> T:
        if self._part is not None:
            return self._part
        if self._bus is None:
            self._bus = open_i2c(self.bus_number)
        try:
            self._part = self._make(self._bus, self.address)
        except SensorError:
            raise  # the driver already said what is wrong (FrameError is also a ValueError)
        except (ValueError, OSError) as exc:  # adafruit_bus_device's probe: ValueError("No I2C device")
            raise SensorSilent.said(
                "no_device", bus=self.bus_number, address=f"0x{self.address:02x}"
            ) from exc
        return self._part

    def forget(self) -> None:
        """Build the library object again on the next read (its state may be wrong)."""
        self._part = None

    def lost(self, exc: OSError) -> SensorSilent:
        """The device stopped answering mid-read: start from scratch next time."""
        self._part = None
        return SensorSilent.said(
            "device_lost",
            bus=self.bus_number,
            address=f"0x{self.address:02x}",
            error=exc.strerror or str(exc),
        )

    def close(self) -> None:
        self._part = None
        deinit = getattr(self._bus, "deinit", None)
        if callable(deinit):
            with contextlib.suppress(OSError):  # nothing left to release
                deinit()
        self._bus = None


def open_bus(bus_number: int) -> I2CBus | None:
    """The bus for a driver's `open`: None when it cannot be opened yet (the first read says why)."""
    try:
        return open_i2c(bus_number)
    except PortGone:
        return None
