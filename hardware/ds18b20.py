"""Maxim DS18B20 water temperature probe on 1-Wire, read through the Linux w1-gpio / w1-therm sysfs.

The kernel does the bus and the conversion (about 750 ms at 12 bits) when `w1_slave` is read:
line 1 ends with the scratchpad CRC check (`crc=.. YES` or `NO`), line 2 with `t=` in m°C
(DS18B20 datasheet: −55…+125 °C). 85 °C is the power-on value of the scratchpad: read back
before any conversion happened (weak pull-up or power), it is refused rather than reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from contract.clock import Clock
from contract.metrics import Metric
from hardware.base import DeviceOptions, FrameError, RawRange, Sample, SensorSilent, register

HINT = "is dtoverlay=w1-gpio set (hardware/setup-pi.sh) and the 4.7 kΩ pull-up fitted? see hardware/README.md"


class Ds18b20Options(DeviceOptions):
    type: Literal["ds18b20"]
    device: str | None = Field(
        default=None, pattern=r"^28-[0-9a-f]{12}$", description="Default: the only one."
    )
    devices_dir: Path = Path("/sys/bus/w1/devices")
    sample_interval_s: float = Field(default=5.0, gt=0, le=3600)


@register(Ds18b20Options)
class Ds18b20:
    metrics = (Metric.WATER_TEMP,)
    raw_range: ClassVar[RawRange] = {Metric.WATER_TEMP: (-55.0, 125.0)}

    def __init__(self, opts: Ds18b20Options, clock: Clock) -> None:
        self._opts, self._clock = opts, clock
        self.stuck_after_s = opts.stuck_after_s

    @classmethod
    def open(cls, opts: Ds18b20Options, clock: Clock) -> Ds18b20:
        return cls(opts, clock)

    def _path(self) -> Path:
        base = self._opts.devices_dir
        if self._opts.device:
            return base / self._opts.device / "w1_slave"
        found = sorted(base.glob("28-*/w1_slave"))
        if len(found) != 1:
            what = "no DS18B20" if not found else f"{len(found)} DS18B20s (set `device`)"
            raise SensorSilent(f"{what} under {base}: {HINT}")
        return found[0]

    def read(self) -> list[Sample]:
        path = self._path()
        try:
            lines = path.read_text(encoding="ascii").splitlines()
        except OSError as exc:
            raise SensorSilent(f"cannot read {path} ({exc.strerror}): {HINT}") from exc
        if len(lines) < 2 or "t=" not in lines[1]:
            raise FrameError(f"{path}: unexpected content {lines!r}")
        if not lines[0].strip().endswith("YES"):
            raise FrameError(f"{path}: CRC check failed (a long cable or a loose contact?)")
        millis = int(lines[1].rsplit("t=", 1)[1])
        if millis == 85_000:
            raise FrameError(
                f"{path}: 85 °C is the power-on value, no conversion happened: check power and pull-up"
            )
        return [Sample(Metric.WATER_TEMP, millis / 1000, self._clock())]

    def close(self) -> None:
        pass
