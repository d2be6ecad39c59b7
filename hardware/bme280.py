"""Bosch BME280 air temperature, relative humidity and pressure on I2C, read with adafruit_bme280.

Registers (BME280 datasheet, section 5.3): chip id 0xD0 = 0x60, trimming parameters 0x88–0xA1 and
0xE1–0xE7, data 0xF7–0xFE (20-bit pressure and temperature, 16-bit humidity); the library runs a
forced measurement per read and applies the datasheet's compensation formulas (section 8.1). RH is
what optical PM sensors need to be corrected at high humidity. A BMP280 (chip id 0x58) has no
humidity and is refused with a hint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field

from contract.clock import Clock
from contract.metrics import Metric
from hardware._i2c import I2CPart, open_bus
from hardware.base import DeviceOptions, FrameError, RawRange, Sample, i2c_address, register
from hardware.ports import I2CBus

if TYPE_CHECKING:
    from adafruit_bme280.basic import Adafruit_BME280_I2C


class Bme280Options(DeviceOptions):
    type: Literal["bme280"]
    bus: int = Field(default=1, ge=0)
    # most breakouts: 0x76 (SDO to GND); Adafruit's: 0x77
    address: Annotated[int, i2c_address(0x76, 0x77)] = 0x76
    stuck_after_s: float | None = Field(default=600.0, gt=0)


def _make(bus: I2CBus, address: int) -> Adafruit_BME280_I2C:
    from adafruit_bme280.basic import (
        Adafruit_BME280_I2C,  # imported where a driver opens: the CircuitPython stack costs every node ~1 MB
    )

    try:
        return Adafruit_BME280_I2C(bus, address)
    except RuntimeError as exc:  # wrong chip id
        raise FrameError(f"{exc}: a BMP280 has no humidity sensor; a BME280 answers 0x60") from exc


@register(Bme280Options)
class Bme280:
    metrics = (Metric.AIR_TEMP, Metric.RH, Metric.PRESSURE)
    raw_range: ClassVar[RawRange] = {
        Metric.AIR_TEMP: (-40.0, 85.0),
        Metric.RH: (0.0, 100.0),
        Metric.PRESSURE: (300.0, 1100.0),
    }

    def __init__(self, opts: Bme280Options, bus: I2CBus | None, clock: Clock) -> None:
        self._part = I2CPart(opts.bus, opts.address, bus, _make)
        self._clock = clock
        self.stuck_after_s = opts.stuck_after_s

    @classmethod
    def open(cls, opts: Bme280Options, clock: Clock) -> Bme280:
        return cls(opts, open_bus(opts.bus), clock)

    def read(self) -> list[Sample]:
        bme = self._part.get()
        try:
            celsius, rh, hpa = bme.temperature, bme.relative_humidity, bme.pressure
        except OSError as exc:
            raise self._part.lost(exc) from exc
        except ArithmeticError as exc:  # adafruit_bme280: zero trimming parameters (a garbled read)
            self._part.forget()
            raise FrameError(f"BME280 trimming parameters unreadable: {exc}") from exc
        now = self._clock()
        return [
            Sample(Metric.AIR_TEMP, round(celsius, 2), now),
            Sample(Metric.RH, round(rh, 2), now),
            Sample(Metric.PRESSURE, round(hpa, 2), now),
        ]

    def close(self) -> None:
        self._part.close()
