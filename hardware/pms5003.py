"""Plantower PMS5003 / PMS7003 / PMSA003 on a UART (9600 8N1), read with adafruit_pm25's UART driver.

Frame (PMS5003 manual, "Appendix I: transport protocol, active mode"): 32 bytes, header `BM`
(0x42 0x4D), frame length 28, then 13 big-endian u16 — PM1.0/PM2.5/PM10 at CF=1 ("standard"), the
same at atmospheric conditions ("environmental"), six particle counts per 0.1 L (>0.3, >0.5, >1.0,
>2.5, >5.0, >10 µm), a reserved word — and a u16 sum of the first 30 bytes. The sensor sends one
frame every 0.2–2.3 s; every frame waiting is read, so `n` counts the sensor's own rate.

`raw` is the CF=1 value because the US EPA correction is defined on CF=1. While the fan spins up
after power-on the sensor sends frames of zeros with a valid checksum: they are dropped, never
reported as 0 µg/m³ (and after the warm-up they mean a dead fan or laser: FrameError).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from adafruit_pm25.uart import PM25_UART
from pydantic import Field

from contract.clock import Clock
from contract.metrics import Metric
from hardware._stream import FrameStream, SerialLink, open_if_present
from hardware.base import DeviceOptions, FrameError, RawRange, Sample, WarmUp, register
from hardware.ports import SerialPort

HEADER = b"BM\x00\x1c"  # `BM` and the frame length 28: fewer false starts than `BM` alone
FRAME_BYTES = 32

FIELDS: tuple[tuple[str, Metric], ...] = (
    ("pm10 standard", Metric.PM1_0),
    ("pm25 standard", Metric.PM2_5),
    ("pm100 standard", Metric.PM10),
    ("pm10 env", Metric.PM1_0_ATM),
    ("pm25 env", Metric.PM2_5_ATM),
    ("pm100 env", Metric.PM10_ATM),
    ("particles 03um", Metric.PC0_3),
    ("particles 05um", Metric.PC0_5),
    ("particles 10um", Metric.PC1_0),
    ("particles 25um", Metric.PC2_5),
    ("particles 50um", Metric.PC5_0),
    ("particles 100um", Metric.PC10),
)

PM_RANGE = (0.0, 1000.0)  # PMS5003 manual: maximum range ≥ 1000 µg/m³; beyond it the optics saturate
COUNT_RANGE = (0.0, 65535.0)


class Pms5003Options(DeviceOptions):
    type: Literal["pms5003"]
    port: str = "/dev/serial0"
    baudrate: int = 9600
    frame_timeout_s: float = Field(
        default=4.0, gt=0, le=60, description="The sensor sends at least every 2.3 s."
    )
    warm_up_s: float = Field(default=30.0, ge=0, le=600)  # manual: stable data 30 s after the fan starts
    stuck_after_s: float | None = Field(default=600.0, gt=0)


def _decode(frame: bytes) -> dict[str, int]:
    """Check and decode one candidate frame with the library (header, length, checksum)."""
    uart = _OneFrame(frame)
    try:
        reading: dict[str, int] = PM25_UART(uart).read()
    except RuntimeError as exc:  # adafruit_pm25 raises RuntimeError for every bad frame
        raise FrameError(f"bad PMS frame: {exc}") from exc
    return reading


class _OneFrame:
    """What PM25_UART reads from: the one frame the stream aligned (the library reads 1 + 31 bytes)."""

    def __init__(self, frame: bytes) -> None:
        self._left = frame

    def read(self, size: int) -> bytes:
        out, self._left = self._left[:size], self._left[size:]
        return out


@register(Pms5003Options)
class Pms5003:
    metrics = tuple(metric for _, metric in FIELDS)
    raw_range: ClassVar[RawRange] = {
        metric: (COUNT_RANGE if metric.value.startswith("pc") else PM_RANGE) for _, metric in FIELDS
    }

    def __init__(self, opts: Pms5003Options, port: SerialPort | None, clock: Clock) -> None:
        self._link = SerialLink(
            opts.port, opts.baudrate, port, header=HEADER, length=FRAME_BYTES, timeout_s=opts.frame_timeout_s
        )
        self._clock = clock
        self._warm_up = WarmUp(clock, opts.warm_up_s)
        self.stuck_after_s = opts.stuck_after_s

    @classmethod
    def open(cls, opts: Pms5003Options, clock: Clock) -> Pms5003:
        return cls(opts, open_if_present(opts.port, opts.baudrate), clock)

    @property
    def is_warming_up(self) -> bool:
        return self._warm_up.is_active

    def read(self) -> list[Sample]:
        return self._link.read(self._read)

    def _read(self, stream: FrameStream, reopened: bool) -> list[Sample]:
        if reopened:  # a sensor that was unplugged has been powered off: its fan starts again
            self._warm_up.restart()
        samples: list[Sample] = []
        zero_frames = 0
        frame = stream.next(block=True)
        while frame is not None:
            try:
                data = _decode(frame)
            except FrameError:
                if samples or zero_frames:
                    break  # keep what we have; the bad frame fails the next read
                stream.reject()
                raise
            stream.accept()
            if not any(data[name] for name, _ in FIELDS):
                zero_frames += 1
            else:
                now = self._clock()
                samples += [Sample(metric, float(data[name]), now) for name, metric in FIELDS]
            frame = stream.next(block=False)
        if zero_frames and not samples and not self.is_warming_up:
            raise FrameError(
                f"only all-zero frames on {stream.path} after the warm-up: is the fan turning? "
                f"A PMS needs 5 V on pin 1 (see hardware/README.md)"
            )
        return samples

    def close(self) -> None:
        self._link.close()
