"""Sensirion SHT40/SHT41/SHT45 air temperature and relative humidity on I2C, read with adafruit_sht4x.

Protocol (SHT4x datasheet, section 4.5): command 0xFD measures with high precision; the answer is six
bytes, temperature ticks and humidity ticks, each followed by a CRC-8 (polynomial 0x31, init 0xFF);
T = −45 + 175·ticks/65535 °C, RH = −6 + 125·ticks/65535 % (the library clips RH to 0…100).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field

from contract.clock import Clock
from contract.metrics import Metric
from hardware._i2c import I2CPart, open_bus
from hardware.base import DeviceOptions, FrameError, RawRange, Sample, i2c_address, register
from hardware.ports import I2CBus


class Sht4xOptions(DeviceOptions):
    type: Literal["sht4x"]
    bus: int = Field(default=1, ge=0)
    address: Annotated[int, i2c_address(0x44, 0x45, 0x46)] = 0x44
    stuck_after_s: float | None = Field(default=600.0, gt=0)


@register(Sht4xOptions)
class Sht4x:
    metrics = (Metric.AIR_TEMP, Metric.RH)
    raw_range: ClassVar[RawRange] = {
        Metric.AIR_TEMP: (-40.0, 125.0),
        Metric.RH: (0.0, 100.0),
    }

    def __init__(self, opts: Sht4xOptions, bus: I2CBus | None, clock: Clock) -> None:
        from adafruit_sht4x import (
            SHT4x,  # imported where a driver opens: the CircuitPython stack costs every node ~1 MB
        )

        self._part = I2CPart(opts.bus, opts.address, bus, SHT4x)
        self._clock = clock
        self.stuck_after_s = opts.stuck_after_s

    @classmethod
    def open(cls, opts: Sht4xOptions, clock: Clock) -> Sht4x:
        return cls(opts, open_bus(opts.bus), clock)

    def read(self) -> list[Sample]:
        sht = self._part.get()
        try:
            celsius, rh = sht.measurements
        except OSError as exc:
            raise self._part.lost(exc) from exc
        except RuntimeError as exc:  # adafruit_sht4x: "Invalid CRC calculated"
            raise FrameError(f"SHT4x answer failed its CRC: {exc} (a long or noisy I2C cable?)") from exc
        now = self._clock()
        return [Sample(Metric.AIR_TEMP, round(celsius, 2), now), Sample(Metric.RH, round(rh, 2), now)]

    def close(self) -> None:
        self._part.close()
