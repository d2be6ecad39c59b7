"""Analog turbidity probes (DFRobot SEN0189 class) through a TI ADS1115 16-bit ADC on I2C, read with
adafruit-circuitpython-ads1x15.

The ADS1115 (datasheet section 9.6) converts one single-ended input per read (config register 0x01:
OS = start, MUX = input, PGA = full scale ±6.144…0.256 V; conversion register 0x00, two's complement).
The SEN0189 puts out 0–4.5 V from a 5 V supply, more than an ADS1115 on 3.3 V may see, so a voltage
divider usually sits in front: `divider` = probe volts / ADC volts (e.g. 10 kΩ over 20 kΩ: 1.5).

`raw` is the probe's volts. Until a calibration is configured, `value` comes from the manufacturer's
curve (DFRobot SEN0189 wiki): NTU = −1120.4·V² + 5742.3·V − 4352.9 for 2.5 V ≤ V ≤ 4.2 V (about
3000 NTU down to 0). It is the built-in calibration preset `dfrobot-sen0189`, applied and sent with
that `cal` id, so a regulator can re-derive it with `minewatch-calibrate apply`; outside that span the
value is null and the reading flagged out_of_range. The curve assumes a 5.0 V supply: measure yours and
calibrate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Annotated, ClassVar, Literal

from pydantic import Field, field_validator

from calibration.presets import load_preset
from contract.clock import Clock
from contract.metrics import Metric
from hardware._i2c import I2CPart, open_bus
from hardware.base import DefaultCurve, DeviceOptions, Sample, i2c_address, register
from hardware.ports import I2CBus

if TYPE_CHECKING:
    from adafruit_ads1x15.analog_in import AnalogIn

GAINS = {2 / 3: 6.144, 1: 4.096, 2: 2.048, 4: 1.024, 8: 0.512, 16: 0.256}  # PGA gain -> full scale, volts


DEFAULT_PRESET = "dfrobot-sen0189"


def sen0189_ntu(volts: float) -> float | None:
    """DFRobot's curve for the SEN0189 at 5.0 V supply, as the preset file defines it; None outside
    2.5…4.2 V, where it is not defined."""
    return load_preset(DEFAULT_PRESET).apply(volts).value


class TurbidityAds1115Options(DeviceOptions):
    type: Literal["turbidity-ads1115"]
    bus: int = Field(default=1, ge=0)
    address: Annotated[int, i2c_address(0x48, 0x49, 0x4A, 0x4B)] = 0x48
    channel: Literal[0, 1, 2, 3] = 0
    gain: float = Field(default=2 / 3, description="ADS1115 PGA gain: 2/3 (±6.144 V), 1, 2, 4, 8 or 16.")
    divider: float = Field(default=1.0, ge=1.0, le=100.0, description="Probe volts / ADC input volts.")
    stuck_after_s: float | None = Field(default=300.0, gt=0)

    @field_validator("gain")
    @classmethod
    def _known_gain(cls, value: float) -> float:
        for gain in GAINS:
            if abs(value - gain) < 0.01:
                return gain
        raise ValueError("gain must be one of 0.6667 (2/3), 1, 2, 4, 8, 16")


@register(TurbidityAds1115Options)
class TurbidityAds1115:
    metrics = (Metric.TURBIDITY,)
    default_curves: ClassVar[Mapping[Metric, DefaultCurve]] = {
        Metric.TURBIDITY: DefaultCurve(DEFAULT_PRESET, sen0189_ntu)
    }

    def __init__(self, opts: TurbidityAds1115Options, bus: I2CBus | None, clock: Clock) -> None:
        self._opts, self._clock = opts, clock

        def make(i2c: I2CBus, address: int) -> AnalogIn:
            from adafruit_ads1x15.ads1115 import (
                ADS1115,  # imported where a driver opens: the CircuitPython stack costs every node ~1 MB
            )
            from adafruit_ads1x15.analog_in import AnalogIn

            # single-shot, the library's default: in 3.0.x its continuous mode never selects the
            # input (it keeps the power-on AIN0-AIN1 pair), which the register-map fake shows
            return AnalogIn(ADS1115(i2c, gain=opts.gain, address=address), opts.channel)

        self._part = I2CPart(opts.bus, opts.address, bus, make)
        full_scale = GAINS[opts.gain] * opts.divider
        self.raw_range = {Metric.TURBIDITY: (0.0, round(full_scale * 0.999, 4))}  # at the rail: saturated
        self.stuck_after_s = opts.stuck_after_s

    @classmethod
    def open(cls, opts: TurbidityAds1115Options, clock: Clock) -> TurbidityAds1115:
        return cls(opts, open_bus(opts.bus), clock)

    def read(self) -> list[Sample]:
        channel = self._part.get()
        try:
            volts = channel.voltage * self._opts.divider
        except OSError as exc:
            raise self._part.lost(exc) from exc
        return [Sample(Metric.TURBIDITY, round(volts, 5), self._clock())]

    def close(self) -> None:
        self._part.close()
