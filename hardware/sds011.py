"""Nova Fitness SDS011 on a UART (9600 8N1, usually through its USB-serial adapter), with pyserial.

Data frame (SDS011 laser dust sensor control protocol V1.3, "data report"): 10 bytes, `AA C0`,
PM2.5 and PM10 as u16 little-endian in tenths of µg/m³, a 2-byte device id, a checksum = the low byte
of the sum of bytes 2…7, and the tail `AB`. Commands are 19 bytes: `AA B4`, 13 data bytes, the
device id (`FF FF` = any), the checksum of bytes 2…16, `AB`. Used here: work/sleep (data `06 01 0x`)
and working period (data `08 01 nn`: measure every nn minutes and sleep in between, 0 = always on).
The laser and fan last about 8000 h running: a working period saves them (and power on solar).

With `work_period_min` = 0 the sensor sends a frame every second, each one read. With a period,
the sensor spins up 30 s by itself before each frame, so no reading is flagged `warming_up`, and a
read without a frame is normal until a whole period (plus a minute) passes in silence.
"""

from __future__ import annotations

import contextlib
from typing import ClassVar, Literal

from pydantic import Field

from contract.clock import Clock
from contract.metrics import Metric
from hardware._stream import FrameStream, SerialLink, open_if_present
from hardware.base import (
    DeviceOptions,
    FrameError,
    PortGone,
    RawRange,
    Sample,
    SensorSilent,
    WarmUp,
    register,
)
from hardware.ports import SerialPort, serial_hint

HEADER = b"\xaa\xc0"
FRAME_BYTES = 10
RANGE = (0.0, 999.9)  # datasheet: measuring range 0.0–999.9 µg/m³


class Sds011Options(DeviceOptions):
    type: Literal["sds011"]
    port: str = "/dev/ttyUSB0"
    baudrate: int = 9600
    work_period_min: int = Field(
        default=0, ge=0, le=30, description="0: always on; n: one frame every n min."
    )
    frame_timeout_s: float = Field(default=3.0, gt=0, le=60)
    warm_up_s: float = Field(default=30.0, ge=0, le=600)
    stuck_after_s: float | None = Field(default=1800.0, gt=0)


def command(data: bytes) -> bytes:
    """A 19-byte command to any device (id FF FF) with its checksum."""
    body = data.ljust(13, b"\x00") + b"\xff\xff"
    return b"\xaa\xb4" + body + bytes([sum(body) & 0xFF]) + b"\xab"


WAKE = command(b"\x06\x01\x01")
SLEEP = command(b"\x06\x01\x00")


def working_period(minutes: int) -> bytes:
    return command(bytes([0x08, 0x01, minutes]))


def decode(frame: bytes) -> tuple[float, float]:
    """(PM2.5, PM10) in µg/m³ from one aligned candidate frame, or FrameError."""
    if frame[9] != 0xAB:
        raise FrameError(f"bad SDS011 frame tail {frame[9]:#04x} (expected 0xab)")
    if sum(frame[2:8]) & 0xFF != frame[8]:
        raise FrameError(f"bad SDS011 checksum {frame[8]:#04x} (expected {sum(frame[2:8]) & 0xFF:#04x})")
    pm25 = int.from_bytes(frame[2:4], "little") / 10
    pm10 = int.from_bytes(frame[4:6], "little") / 10
    return pm25, pm10


@register(Sds011Options)
class Sds011:
    metrics = (Metric.PM2_5, Metric.PM10)
    raw_range: ClassVar[RawRange] = {Metric.PM2_5: RANGE, Metric.PM10: RANGE}

    def __init__(self, opts: Sds011Options, port: SerialPort | None, clock: Clock) -> None:
        self._opts, self._clock = opts, clock
        self._link = SerialLink(
            opts.port, opts.baudrate, port, header=HEADER, length=FRAME_BYTES, timeout_s=opts.frame_timeout_s
        )
        self._warm_up = WarmUp(clock, opts.warm_up_s if opts.work_period_min == 0 else 0.0)
        self.stuck_after_s = opts.stuck_after_s
        self._last_frame = clock()
        if port is not None:
            self._configure(self._link.stream()[0])

    @classmethod
    def open(cls, opts: Sds011Options, clock: Clock) -> Sds011:
        return cls(opts, open_if_present(opts.port, opts.baudrate), clock)

    @property
    def is_warming_up(self) -> bool:
        return self._warm_up.is_active

    def _configure(self, stream: FrameStream) -> None:
        """Wake the sensor (it may have been put to sleep by our last shutdown) and set its period."""
        stream.write(WAKE)
        stream.write(working_period(self._opts.work_period_min))
        self._warm_up.restart()
        self._last_frame = self._clock()

    def read(self) -> list[Sample]:
        return self._link.read(self._read)

    def _read(self, stream: FrameStream, reopened: bool) -> list[Sample]:
        if reopened:
            self._configure(stream)
        periodic = self._opts.work_period_min > 0
        samples: list[Sample] = []
        frame = stream.next(block=not periodic, poll=periodic)
        while frame is not None:
            try:
                pm25, pm10 = decode(frame)
            except FrameError:
                if samples:
                    break  # keep what we have; the bad frame fails the next read
                stream.reject()
                raise
            stream.accept()
            now = self._clock()
            samples += [Sample(Metric.PM2_5, pm25, now), Sample(Metric.PM10, pm10, now)]
            frame = stream.next(block=False)
        if samples:
            self._last_frame = self._clock()
        elif (
            periodic
            and (self._clock() - self._last_frame).total_seconds() > self._opts.work_period_min * 60 + 60
        ):
            raise SensorSilent(
                f"no frame on {stream.path} for {self._opts.work_period_min} min: {serial_hint(stream.path)}"
            )
        return samples

    def close(self) -> None:
        """Put the sensor to sleep on the way out: the fan and laser wear only while running."""
        if self._link.is_open:
            with contextlib.suppress(PortGone):  # unplugged: it is asleep already
                self._link.stream()[0].write(SLEEP)
        self._link.close()
