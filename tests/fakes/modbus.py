"""A Modbus RTU slave on the master end of a pty: answers function 3 and 4 reads from a register
map, with the CRC computed by pymodbus (not by us, and not by minimalmodbus, which checks it)."""

from __future__ import annotations

import os
import select
import struct
import threading

from pymodbus.framer import FramerRTU

from tests.fakes.pty import PtySensor


def crc(frame: bytes) -> bytes:
    return int(FramerRTU.compute_CRC(frame)).to_bytes(2, "big")  # pymodbus packs it wire-ready


class ModbusSlave:
    """`mode`: "ok", "silent" (never answers), "bad_crc" (answers with a wrong CRC), or
    "exception" (answers with exception code 2, illegal data address)."""

    def __init__(self, pty: PtySensor, address: int, registers: dict[int, int]) -> None:
        self.pty, self.address, self.registers = pty, address, registers
        self.mode = "ok"
        self.requests: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        buf = b""
        while not self._stop.is_set():
            try:
                fd = self.pty.master
                ready, _, _ = select.select([fd], [], [], 0.05)
                if not ready:
                    continue
                buf += os.read(fd, 256)
            except (OSError, AssertionError, ValueError):
                buf = b""
                self._stop.wait(0.05)  # unplugged: wait for the test to plug it back
                continue
            while len(buf) >= 8:
                request, buf = buf[:8], buf[8:]
                self._answer(request)

    def _answer(self, request: bytes) -> None:
        self.requests.append(request)
        if request[6:] != crc(request[:6]) or request[0] != self.address or self.mode == "silent":
            return
        function, start, count = struct.unpack(">BHH", request[1:6])
        if self.mode == "exception" or any(start + i not in self.registers for i in range(count)):
            body = bytes([self.address, function | 0x80, 2])
        else:
            words = b"".join(struct.pack(">H", self.registers[start + i] & 0xFFFF) for i in range(count))
            body = bytes([self.address, function, len(words)]) + words
        answer = body + crc(body)
        if self.mode == "bad_crc":
            answer = answer[:-1] + bytes([answer[-1] ^ 0xFF])
        self.pty.send(answer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()
