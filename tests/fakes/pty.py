"""A pty pair standing in for a serial sensor. The driver opens `path` (a symlink, like the udev
name /dev/serial0) with the real pyserial; the test writes real frames into the master end and
reads what the driver sent. `unplug()` and `plug()` make the device vanish and come back under the
same name, as a USB adapter does."""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty
from collections.abc import Iterator, Sequence
from pathlib import Path


class PtySensor:
    def __init__(self, directory: Path, name: str = "ttyUSB0") -> None:
        self.path = str(directory / name)
        self._master: int | None = None
        self._slave: int | None = None
        self.plug()

    def plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation before the driver configures it
        self._master, self._slave = master, slave
        if os.path.lexists(self.path):
            os.unlink(self.path)
        os.symlink(os.ttyname(slave), self.path)

    def unplug(self) -> None:
        """Close both ends and remove the name: the driver's next read fails, reopening fails."""
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        if os.path.lexists(self.path):
            os.unlink(self.path)

    @property
    def master(self) -> int:
        assert self._master is not None, "unplugged"
        return self._master

    def send(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.master, view)
            view = view[written:]

    @contextlib.contextmanager
    def streaming(self, frames: Sequence[bytes], period_s: float = 0.05) -> Iterator[None]:
        """Send `frames` round and round in the background, as a sensor in active mode does
        (frames sent while nobody has the port open are lost, as on a real UART)."""
        stop = threading.Event()

        def run() -> None:
            index = 0
            while not stop.wait(period_s):
                try:
                    self.send(frames[index % len(frames)])
                except (OSError, AssertionError):
                    continue  # unplugged for now
                index += 1

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def received(self, size: int, timeout_s: float = 5.0) -> bytes:
        """Exactly `size` bytes the driver wrote, or fewer if it wrote nothing more in time."""
        out = b""
        while len(out) < size:
            ready, _, _ = select.select([self.master], [], [], timeout_s)
            if not ready:
                break
            out += os.read(self.master, size - len(out))
        return out

    def drain(self) -> bytes:
        out = b""
        while select.select([self.master], [], [], 0.05)[0]:
            out += os.read(self.master, 4096)
        return out

    def close(self) -> None:
        self.unplug()
