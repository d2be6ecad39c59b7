"""Plantower PMSA003I: the PMS family's I2C variant (address 0x12), read with adafruit_pm25's I2C
driver (Blinka's busio on the Pi; `board` is never imported, the bus is opened by number).

Every read returns the sensor's latest 32-byte frame, the same format as on the UART (see
hardware/pms5003.py), checked and decoded by the library. Values, warm-up and the all-zero frame
are handled as for the PMS5003.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import Field

from contract.clock import Clock
from hardware._i2c import I2CPart, open_bus
from hardware.base import DeviceOptions, FrameError, Sample, WarmUp, i2c_address, register
from hardware.pms5003 import FIELDS, Pms5003
from hardware.ports import I2CBus

if TYPE_CHECKING:
    from adafruit_pm25.i2c import PM25_I2C


class Pmsa003iOptions(DeviceOptions):
    type: Literal["pmsa003i"]
    bus: int = Field(default=1, ge=0)
    address: Annotated[int, i2c_address(), Field(ge=0x03, le=0x77)] = 0x12
    warm_up_s: float = Field(default=30.0, ge=0, le=600)
    stuck_after_s: float | None = Field(default=600.0, gt=0)


def _make(bus: I2CBus, address: int) -> PM25_I2C:
    from adafruit_bus_device.i2c_device import (
        I2CDevice,  # imported where a driver opens: the CircuitPython stack costs every node ~1 MB
    )
    from adafruit_pm25.i2c import PM25_I2C

    I2CDevice(bus, address)  # probe once: PM25_I2C itself retries five times, a second apart
    return PM25_I2C(bus, None, address)


@register(Pmsa003iOptions)
class Pmsa003i:
    metrics = Pms5003.metrics
    raw_range = Pms5003.raw_range

    def __init__(self, opts: Pmsa003iOptions, bus: I2CBus | None, clock: Clock) -> None:
        self._part = I2CPart(opts.bus, opts.address, bus, _make)
        self._clock = clock
        self._warm_up = WarmUp(clock, opts.warm_up_s)
        self.stuck_after_s = opts.stuck_after_s

    @classmethod
    def open(cls, opts: Pmsa003iOptions, clock: Clock) -> Pmsa003i:
        return cls(opts, open_bus(opts.bus), clock)

    @property
    def is_warming_up(self) -> bool:
        return self._warm_up.is_active

    def read(self) -> list[Sample]:
        pm = self._part.get()
        try:
            data = pm.read()
        except RuntimeError as exc:  # adafruit_pm25 wraps bus errors and bad frames alike
            if isinstance(exc.__cause__, OSError):
                self._warm_up.restart()  # it comes back from a power loss with its fan stopped
                raise self._part.lost(exc.__cause__) from exc
            raise FrameError(f"bad PMSA003I frame: {exc}") from exc
        if not any(data[name] for name, _ in FIELDS):
            if self.is_warming_up:
                return []
            raise FrameError("only all-zero frames after the warm-up: is the fan turning?")
        now = self._clock()
        return [Sample(metric, float(data[name]), now) for name, metric in FIELDS]

    def close(self) -> None:
        self._part.close()
