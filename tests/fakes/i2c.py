"""I2C parts faked as register maps behind the bus calls adafruit_bus_device makes, so the adafruit
libraries' own protocol and conversion code runs against them. A missing or unplugged device
answers like Linux does: OSError 121 (remote I/O error)."""

from __future__ import annotations

import errno
import struct
from typing import Any, ClassVar, Protocol

from adafruit_sht4x import SHT4x


class Device(Protocol):
    def write(self, data: bytes) -> None: ...

    def read(self, size: int) -> bytes: ...


class FakeI2CBus:
    def __init__(self) -> None:
        self.devices: dict[int, Device] = {}
        self.unplugged: set[int] = set()
        self._locked = False

    def try_lock(self) -> bool:
        if self._locked:
            return False
        self._locked = True
        return True

    def unlock(self) -> None:
        self._locked = False

    def _device(self, address: int) -> Device:
        device = self.devices.get(address)
        if device is None or address in self.unplugged:
            raise OSError(errno.EREMOTEIO, "Remote I/O error")
        return device

    def writeto(
        self, address: int, buffer: Any, *, start: int = 0, end: int | None = None, stop: bool = True
    ) -> None:
        data = bytes(buffer[start:end])
        device = self._device(address)
        if data:  # an empty write is adafruit_bus_device's probe: the address acknowledged is enough
            device.write(data)

    def readfrom_into(
        self, address: int, buffer: Any, *, start: int = 0, end: int | None = None, stop: bool = True
    ) -> None:
        end = len(buffer) if end is None else end
        buffer[start:end] = self._device(address).read(end - start)

    def writeto_then_readfrom(
        self,
        address: int,
        buffer_out: Any,
        buffer_in: Any,
        *,
        out_start: int = 0,
        out_end: int | None = None,
        in_start: int = 0,
        in_end: int | None = None,
        stop: bool = False,
    ) -> None:
        self.writeto(address, buffer_out, start=out_start, end=out_end)
        self.readfrom_into(address, buffer_in, start=in_start, end=in_end)


class Bme280:
    """8-bit register map with an auto-incrementing pointer (BME280 datasheet, section 6.2.1)."""

    def __init__(self, chip_id: int = 0x60) -> None:
        self.regs = bytearray(256)
        self.regs[0xD0] = chip_id
        self._pointer = 0

    def calibrate(
        self, t: tuple[int, ...], p: tuple[int, ...], h: tuple[int, int, int, int, int, int]
    ) -> None:
        self.regs[0x88:0xA0] = struct.pack("<HhhHhhhhhhhh", *t, *p)
        h1, h2, h3, h4, h5, h6 = h
        self.regs[0xA1] = h1
        self.regs[0xE1:0xE8] = struct.pack(
            "<hBbBbb", h2, h3, h4 >> 4, (h4 & 0xF) | ((h5 & 0xF) << 4), h5 >> 4, h6
        )

    def set_adc(self, temperature: int, pressure: int, humidity: int) -> None:
        """Raw ADC counts: 20-bit temperature and pressure, 16-bit humidity."""
        self.regs[0xF7:0xFA] = (pressure << 4).to_bytes(3, "big")
        self.regs[0xFA:0xFD] = (temperature << 4).to_bytes(3, "big")
        self.regs[0xFD:0xFF] = humidity.to_bytes(2, "big")

    def write(self, data: bytes) -> None:
        self._pointer = data[0]
        if len(data) == 2 and data[0] >= 0xF2:  # control registers (reset 0xE0 changes nothing here)
            self.regs[data[0]] = data[1]

    def read(self, size: int) -> bytes:
        out = bytes(self.regs[self._pointer : self._pointer + size])
        self._pointer += size
        return out


class Ads1115:
    """16-bit registers (datasheet 9.6): 0 conversion, 1 config. Writing config with OS set converts
    the selected single-ended input at once, so the config's OS bit reads back 1 (done)."""

    FULL_SCALE: ClassVar[dict[int, float]] = {
        0: 6.144,
        1: 4.096,
        2: 2.048,
        3: 1.024,
        4: 0.512,
        5: 0.256,
        6: 0.256,
        7: 0.256,
    }

    def __init__(self) -> None:
        self.volts = [0.0, 0.0, 0.0, 0.0]
        self.regs = {0: 0, 1: 0x8583, 2: 0x8000, 3: 0x7FFF}
        self._pointer = 0

    def _convert(self) -> None:
        config = self.regs[1]
        mux = (config >> 12) & 0x7
        full_scale = self.FULL_SCALE[(config >> 9) & 0x7]
        volts = self.volts[mux - 4] if mux >= 4 else 0.0  # differential pairs are not wired here
        code = round(volts / full_scale * 32768)
        self.regs[0] = max(-32768, min(32767, code)) & 0xFFFF

    @property
    def is_continuous(self) -> bool:
        return not self.regs[1] & 0x0100  # MODE bit 8: 0 continuous, 1 single-shot

    def write(self, data: bytes) -> None:
        self._pointer = data[0]
        if len(data) == 3:
            value = int.from_bytes(data[1:3], "big")
            self.regs[self._pointer] = value
            if self._pointer == 1 and (value & 0x8000 or self.is_continuous):
                self._convert()

    def read(self, size: int) -> bytes:
        if self._pointer == 0 and self.is_continuous:
            self._convert()  # converting all the time: the latest input
        value = self.regs[self._pointer] | (0x8000 if self._pointer == 1 else 0)
        return value.to_bytes(2, "big")[:size]


class Sht4x:
    """Command-driven (SHT4x datasheet 4.5): 0xFD measures with high precision and answers six bytes,
    temperature and humidity ticks each followed by the Sensirion CRC-8."""

    def __init__(self) -> None:
        self.ticks = (0, 0)
        self.bad_crc = False
        self._answer = b""

    @staticmethod
    def crc(data: bytes) -> int:
        crc: int = SHT4x._crc8(data)
        return crc

    def set(self, celsius: float, rh: float) -> None:
        self.ticks = (round((celsius + 45) * 65535 / 175), round((rh + 6) * 65535 / 125))

    def write(self, data: bytes) -> None:
        if data[0] == 0xFD:
            t, h = (v.to_bytes(2, "big") for v in self.ticks)
            crc_h = self.crc(h) ^ (0xFF if self.bad_crc else 0)
            self._answer = t + bytes([self.crc(t)]) + h + bytes([crc_h])

    def read(self, size: int) -> bytes:
        return self._answer[:size].ljust(size, b"\x00")


class Pmsa003i:
    """The PMSA003I answers every read with its latest 32-byte frame (same format as the UART)."""

    def __init__(self, frame: bytes) -> None:
        self.frame = frame

    def write(self, data: bytes) -> None:
        pass

    def read(self, size: int) -> bytes:
        return self.frame[:size]
