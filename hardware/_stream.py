"""Finds fixed-length frames in a serial byte stream, for the UART dust sensors (PMS5003, SDS011).

Sensors in active mode send a frame every second or so, whether anyone reads or not. After garbage
or a partial frame the search restarts one byte after the rejected header, so the next real header
is found (a reader that always consumes a whole frame length would also swallow the good frame
behind a truncated one). Checking the frame is the caller's business; this only aligns.
"""

from __future__ import annotations

import contextlib
import termios
import time
from collections.abc import Callable
from typing import TypeVar

import serial

from hardware.base import FrameError, PortGone, SensorSilent
from hardware.ports import SerialPort, open_serial, serial_hint_key


class FrameStream:
    def __init__(self, port: SerialPort, header: bytes, length: int, timeout_s: float) -> None:
        self._port, self._header, self._length, self._timeout_s = port, header, length, timeout_s
        self._buf = bytearray()

    @property
    def path(self) -> str:
        return str(self._port.port)

    def next(self, *, block: bool, poll: bool = False) -> bytes | None:
        """The next header-aligned candidate frame. Blocking: wait up to the timeout, then raise
        SensorSilent (nothing arrived) or FrameError (bytes, but never a whole frame). Not
        blocking: None when no whole frame is already waiting (`poll`: after one short read, for
        bytes the kernel has not handed over yet)."""
        deadline = time.monotonic() + self._timeout_s
        received = 0
        while True:
            frame = self._find()
            if frame is not None:
                return frame
            waiting = self._in_waiting()
            if not block and (not waiting or time.monotonic() >= deadline):  # a flood must not hold us
                if not poll or waiting:
                    return None
                poll = False
                waiting = 1
            if block and time.monotonic() >= deadline:
                if received:
                    raise FrameError(
                        f"{received} bytes on {self.path} in {self._timeout_s:g} s but no whole frame: "
                        f"a loose wire, the wrong baud rate or the wrong sensor type?"
                    )
                raise SensorSilent.said(
                    "no_data", path=self.path, seconds=f"{self._timeout_s:g}", hint=serial_hint_key(self.path)
                )
            chunk = self._read(max(1, waiting))
            received += len(chunk)
            self._buf += chunk

    def accept(self) -> None:
        del self._buf[: self._length]

    def reject(self) -> None:
        """Drop the rejected header's first byte only: the real next header may be inside it."""
        del self._buf[:1]

    def write(self, data: bytes) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except (serial.SerialException, OSError, termios.error) as exc:  # pyserial lets termios out
            raise PortGone(f"{self.path} vanished while writing: {exc}") from exc

    def _find(self) -> bytes | None:
        index = self._buf.find(self._header)
        if index < 0:
            keep = len(self._header) - 1  # a header may be split across two reads
            del self._buf[: max(0, len(self._buf) - keep)]
            return None
        del self._buf[:index]
        if len(self._buf) < self._length:
            return None
        return bytes(self._buf[: self._length])

    def _in_waiting(self) -> int:
        try:
            return int(self._port.in_waiting)
        except (serial.SerialException, OSError, termios.error) as exc:  # pyserial lets termios out
            raise PortGone(f"{self.path} vanished: {exc}") from exc

    def _read(self, size: int) -> bytes:
        try:
            data: bytes = self._port.read(size)
        except (serial.SerialException, OSError, termios.error) as exc:  # pyserial lets termios out
            raise PortGone.said(
                "vanished", path=self.path, error=str(exc), hint=serial_hint_key(self.path)
            ) from exc
        return data


T = TypeVar("T")


def open_if_present(path: str, baudrate: int) -> SerialPort | None:
    """The port, or None when the device is not there yet: the first read says why, later reads
    try again, so a node started before its USB adapter is plugged in still comes up."""
    try:
        return open_serial(path, baudrate)
    except PortGone:
        return None


class SerialLink:
    """Owns one serial port for a driver: opens it again after it vanished (the sampler's backoff
    paces the attempts) and tells each read whether the device is fresh."""

    def __init__(
        self,
        path: str,
        baudrate: int,
        port: SerialPort | None,
        *,
        header: bytes,
        length: int,
        timeout_s: float,
    ) -> None:
        self._path, self._baudrate = path, baudrate
        self._header, self._length, self._timeout_s = header, length, timeout_s
        self._stream = None if port is None else FrameStream(port, header, length, timeout_s)
        self._port = port

    @property
    def is_open(self) -> bool:
        return self._stream is not None

    def stream(self) -> tuple[FrameStream, bool]:
        """The open stream, and whether it was (re)opened just now."""
        if self._stream is not None:
            return self._stream, False
        self._port = open_serial(self._path, self._baudrate)
        self._stream = FrameStream(self._port, self._header, self._length, self._timeout_s)
        return self._stream, True

    def read(self, read: Callable[[FrameStream, bool], T]) -> T:
        """Run one driver read on the stream, telling it whether the port was (re)opened just now.
        A device that vanishes (PortGone) is forgotten, so the next read opens it again."""
        try:
            stream, reopened = self.stream()
            return read(stream, reopened)
        except PortGone:
            self.lost()
            raise

    def lost(self) -> None:
        """The device vanished: close our end so the next `stream()` opens it again."""
        self.close()

    def close(self) -> None:
        if self._port is not None:
            with contextlib.suppress(
                serial.SerialException, OSError
            ):  # its device is gone: nothing to release
                self._port.close()
        self._port, self._stream = None, None
