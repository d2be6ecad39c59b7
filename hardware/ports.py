"""Opens the devices drivers talk through: serial ports, I2C buses and Modbus RTU registers.

Drivers never open anything themselves; they call these functions (in `open`, and again when a port
vanished), so a test can hand a driver a pty or a fake I2C bus instead. Every failure becomes a
`PortGone` or `SensorSilent` whose message says what to do, because `minewatch-node check` prints
it to the person holding the kit.
"""

from __future__ import annotations

import errno
import termios
from enum import StrEnum
from typing import Any, Protocol, TypeAlias

import serial

from contract.i18n import Texts
from hardware.base import FrameError, PortGone, SensorSilent

SerialPort: TypeAlias = Any  # a serial.Serial: pyserial has no type hints

_README = "see hardware/README.md"


def serial_hint_key(path: str) -> str:
    """What to check when a serial port gives nothing: a `[sensor]` message of contract/i18n."""
    return "hint_uart" if "serial0" in path or "ttyAMA" in path or "ttyS" in path else "hint_usb"


def serial_hint(path: str) -> str:
    """The same, in English."""
    return Texts("en")(f"sensor.{serial_hint_key(path)}")


def open_serial(
    path: str,
    baudrate: int = 9600,
    *,
    timeout_s: float = 0.2,
    parity: str = serial.PARITY_NONE,
    stopbits: float = serial.STOPBITS_ONE,
) -> SerialPort:
    """Open a serial port exclusively (two programs reading one sensor would split its frames)."""
    try:
        return serial.Serial(
            path,
            baudrate=baudrate,
            timeout=timeout_s,
            write_timeout=2.0,
            parity=parity,
            stopbits=stopbits,
            exclusive=True,
        )
    except serial.SerialException as exc:
        code = exc.errno
        if code == errno.ENOENT:
            raise PortGone.said("missing", path=path, hint=serial_hint_key(path)) from exc
        if code in (errno.EACCES, errno.EPERM):
            raise PortGone.said("no_permission", path=path) from exc
        if "lock" in str(exc).lower() or code in (errno.EBUSY, errno.EAGAIN, errno.EWOULDBLOCK):
            raise PortGone(
                f"{path} is busy: is minewatch-node already running? stop it first "
                f"(sudo systemctl stop minewatch-node)"
            ) from exc
        raise PortGone(f"cannot open {path}: {exc}") from exc


class I2CBus(Protocol):
    """The calls adafruit_bus_device makes on a busio.I2C (Blinka on the Pi, a fake in tests)."""

    def try_lock(self) -> bool: ...

    def unlock(self) -> None: ...

    def writeto(self, address: int, buffer: Any, **kwargs: Any) -> None: ...

    def readfrom_into(self, address: int, buffer: Any, **kwargs: Any) -> None: ...

    def writeto_then_readfrom(self, address: int, buffer_out: Any, buffer_in: Any, **kwargs: Any) -> None: ...


def open_i2c(bus: int) -> I2CBus:
    """Open /dev/i2c-<bus> through Blinka by number, without Blinka's board detection (`board`)."""
    try:
        # imported here: Blinka costs memory and start-up time, and only I2C kits need it
        from adafruit_extended_bus import ExtendedI2C

        i2c: I2CBus = ExtendedI2C(bus)
    except (OSError, ValueError) as exc:
        raise PortGone.said("i2c_bus", bus=bus) from exc
    return i2c


def i2c_hint(bus: int, address: int) -> str:
    return Texts("en")("sensor.no_device", bus=bus, address=f"0x{address:02x}")


class DataType(StrEnum):
    """How a Modbus value is laid out in its registers."""

    UINT16 = "uint16"
    INT16 = "int16"
    UINT32 = "uint32"
    INT32 = "int32"
    FLOAT32 = "float32"


class WordOrder(StrEnum):
    """Order of the two registers of a 32-bit value (probes differ): `big` = high word first."""

    BIG = "big"
    LITTLE = "little"


class RegisterReader(Protocol):
    """The one call a Modbus driver needs. Raises SensorSilent, FrameError or PortGone."""

    def read(
        self, register: int, data_type: DataType, *, function_code: int, word_order: WordOrder
    ) -> float: ...

    def close(self) -> None: ...


class ModbusRegisters:
    """RegisterReader over minimalmodbus (one file over pyserial): framing, CRC and decoding are its."""

    def __init__(self, port: SerialPort, slave: int) -> None:
        import minimalmodbus  # the module costs little, but only Modbus kits need it

        self._mm = minimalmodbus
        self._port = port
        self._instrument = minimalmodbus.Instrument(port, slave)
        self._instrument.clear_buffers_before_each_transaction = True

    def read(self, register: int, data_type: DataType, *, function_code: int, word_order: WordOrder) -> float:
        mm, inst = self._mm, self._instrument
        # minimalmodbus names its orders after the bytes: BYTEORDER_BIG = ABCD, _LITTLE_SWAP = CDAB
        order = mm.BYTEORDER_BIG if word_order is WordOrder.BIG else mm.BYTEORDER_LITTLE_SWAP
        try:
            if data_type in (DataType.UINT16, DataType.INT16):
                signed = data_type is DataType.INT16
                return float(inst.read_register(register, 0, function_code, signed))
            if data_type is DataType.FLOAT32:
                return float(inst.read_float(register, function_code, 2, order))
            signed = data_type is DataType.INT32
            return float(inst.read_long(register, function_code, signed, order))
        except mm.NoResponseError as exc:
            raise SensorSilent(
                f"no Modbus answer from slave {inst.address} on {self._port.port}: check A/B wiring, "
                f"the probe's power, its address and baud rate. {_README}"
            ) from exc
        except mm.SlaveReportedException as exc:
            raise FrameError(
                f"the probe refused register {register}: {exc} (wrong preset or register?)"
            ) from exc
        except mm.ModbusException as exc:
            raise FrameError(f"bad Modbus answer from slave {inst.address}: {exc}") from exc
        except (serial.SerialException, OSError, termios.error) as exc:  # pyserial lets termios out
            raise PortGone(
                f"{self._port.port} vanished ({exc}): is the USB-RS485 adapter plugged in?"
            ) from exc

    def close(self) -> None:
        self._port.close()


def open_modbus(
    path: str, slave: int, baudrate: int, *, parity: str = "N", stopbits: int = 1, timeout_s: float = 1.0
) -> ModbusRegisters:
    """A Modbus RTU slave on an RS-485 adapter: 8 data bits, the parity and stop bits the probe uses."""
    port = open_serial(path, baudrate, timeout_s=timeout_s, parity=parity, stopbits=stopbits)
    return ModbusRegisters(port, slave)
