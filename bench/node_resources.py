"""The node's resident memory and CPU per hour, as a kit runs it: a PMS5003 streaming real 32-byte
frames at 1 Hz into a pty, sampled every second, averaged into one reading per 60 s, published to a
real Mosquitto. A second node with the simulated PM sensor runs beside it in the same minutes, so
the serial path's share shows as a ratio; both are compared with our budget for a Pi Zero 2 W.

    .venv/bin/python -m bench.node_resources [--minutes 10]

CPU is counted after start-up (imports, opening the outbox) and scaled to one hour; RSS is read
from /proc at the end (and its peak during the run). The node runs as `python -m node.cli run`
through this module's `child` entry, which registers a PMS5003 driver for the bench (PM25_UART of
adafruit_pm25 on the pty) only when `hardware` has no `pms5003` driver of its own.
"""

from __future__ import annotations

import argparse
import os
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
from pathlib import Path

BUDGET_RSS_MB = 60.0  # of a Pi Zero 2 W's 512 MB, beside the OS
BUDGET_CPU_S_PER_H = 36.0  # 1 % of one core
ROOT = Path(__file__).resolve().parent.parent


def pms5003_frame(pm1: int, pm25: int, pm10: int) -> bytes:
    """A valid frame: 'BM', length 28, 13 big-endian u16 (CF=1 PM1.0/2.5/10, atmospheric PM1.0/2.5/10,
    particle counts >0.3…>10 µm, reserved), then the u16 sum of all bytes before it (PMS5003 manual)."""
    data = [pm1, pm25, pm10, pm1, pm25, pm10, 1200, 350, 60, 8, 2, 1, 0]
    body = b"BM" + struct.pack(">H", 28) + struct.pack(">13H", *data)
    return body + struct.pack(">H", sum(body) & 0xFFFF)


def _stream(master: int, stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        os.write(master, pms5003_frame(8 + i % 3, 12 + i % 5, 19 + i % 7))
        i += 1
        stop.wait(1.0)


def _register_bench_driver() -> str:
    """The sensor type to use: the project's own `pms5003`, or a bench-only one over PM25_UART."""
    import hardware

    if "pms5003" in hardware.known_types():
        return "pms5003"
    from typing import Literal

    import serial
    from adafruit_pm25.uart import PM25_UART

    from contract.clock import Clock
    from contract.metrics import Metric
    from hardware.base import Sample, SensorError, SensorOptions, register

    class BenchPmsOptions(SensorOptions):
        type: Literal["bench-pms5003"]
        port: str

    @register(BenchPmsOptions)
    class BenchPms:
        metrics = (Metric.PM1_0, Metric.PM2_5, Metric.PM10)

        def __init__(self, opts: BenchPmsOptions, clock: Clock) -> None:
            self._port = serial.Serial(opts.port, 9600, timeout=3)
            self._sensor, self._clock = PM25_UART(self._port), clock

        @classmethod
        def open(cls, opts: BenchPmsOptions, clock: Clock) -> BenchPms:
            return cls(opts, clock)

        def read(self) -> list[Sample]:
            try:
                data = self._sensor.read()
            except RuntimeError as exc:
                raise SensorError(str(exc)) from exc
            now = self._clock()
            return [
                Sample(Metric.PM1_0, float(data["pm10 standard"]), now),
                Sample(Metric.PM2_5, float(data["pm25 standard"]), now),
                Sample(Metric.PM10, float(data["pm100 standard"]), now),
            ]

        def close(self) -> None:
            self._port.close()

    return "bench-pms5003"


def child(argv: list[str]) -> int:
    """Entry of the measured process: the real node CLI, with the bench driver registered first."""
    _register_bench_driver()
    from node.cli import main

    return main(argv)


def _proc(pid: int) -> tuple[float, float]:
    """(CPU seconds, RSS MB) of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    rss_kb = next(
        int(line.split()[1])
        for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        if line.startswith("VmRSS")
    )
    return cpu, rss_kb / 1024


def main() -> int:
    if sys.argv[1:2] == ["child"]:
        return child(sys.argv[2:])
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    args = parser.parse_args()
    from gateway import devservices

    sensor_type = _register_bench_driver()
    master, slave = os.openpty()
    tty.setraw(slave, termios.TCSANOW)
    stop = threading.Event()
    streamer = threading.Thread(target=_stream, args=(master, stop), daemon=True)
    with tempfile.TemporaryDirectory(prefix="minewatch-bench-") as name:
        tmp = Path(name)
        broker = devservices.mosquitto(tmp / "mosquitto")
        broker.start()
        procs: dict[str, subprocess.Popen[bytes]] = {}
        try:
            streamer.start()
            sensors = {
                "pms5003-pty": f'[[sensors]]\ntype = "{sensor_type}"\nport = "{os.ttyname(slave)}"\n',
                "simulated": '[[sensors]]\ntype = "simulated-pm"\n',
            }
            for label, sensor in sensors.items():
                cfg = tmp / f"{label}.toml"
                cfg.write_text(
                    f'site = "bench"\nnode = "{label}"\ninterval_s = 60\nclock_sync = "rtc"\n'
                    f'[mqtt]\nhost = "127.0.0.1"\nport = {broker.port}\n'
                    f'[buffer]\npath = "{tmp / label}.sqlite"\n{sensor}'
                )
                log = (tmp / f"{label}.log").open("ab")
                procs[label] = subprocess.Popen(
                    [sys.executable, "-m", "bench.node_resources", "child", "run", "--config", str(cfg)],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=ROOT,
                )
            time.sleep(15)  # start-up: imports, outbox, first connection
            start = {label: _proc(p.pid) for label, p in procs.items()}
            t0 = time.monotonic()
            peak = {label: s[1] for label, s in start.items()}
            while time.monotonic() - t0 < args.minutes * 60:
                time.sleep(10)
                for label, p in procs.items():
                    if p.poll() is not None:
                        raise SystemExit(f"{label} exited; see {tmp / label}.log")
                    peak[label] = max(peak[label], _proc(p.pid)[1])
            elapsed_h = (time.monotonic() - t0) / 3600
            end = {label: _proc(p.pid) for label, p in procs.items()}
            readings = {label: _published(tmp / f"{label}.sqlite") for label in procs}
            faults = {
                label: (tmp / f"{label}.log").read_text().count("WARNING node.sampler") for label in procs
            }
        finally:
            stop.set()
            for p in procs.values():
                p.terminate()
                p.wait(30)
            broker.stop()
    print(
        f"node over {args.minutes:.0f} min, interval 60 s, 1 Hz sampling; driver for the pty: {sensor_type}"
    )
    print(
        f"{'node':<12} {'RSS MB':>7} {'peak':>6} {'/budget':>7} {'CPU s/h':>8} {'% core':>7} {'/budget':>7}"
        f" {'readings':>8} {'faults':>6}"
    )
    cpu_h: dict[str, float] = {}
    for label in procs:
        cpu_h[label] = (end[label][0] - start[label][0]) / elapsed_h
        print(
            f"{label:<12} {end[label][1]:>7.1f} {peak[label]:>6.1f} {end[label][1] / BUDGET_RSS_MB:>7.2f}"
            f" {cpu_h[label]:>8.1f} {cpu_h[label] / 36:>7.2f} {cpu_h[label] / BUDGET_CPU_S_PER_H:>7.2f}"
            f" {readings[label]:>8} {faults[label]:>6}"
        )
    ratio = cpu_h["pms5003-pty"] / max(cpu_h["simulated"], 1e-9)
    print(f"CPU pms5003-pty / simulated: {ratio:.2f}")
    print(f"budget: {BUDGET_RSS_MB:.0f} MB RSS, {BUDGET_CPU_S_PER_H:.0f} CPU s per hour (1 % of a core)")
    return 0


def _published(outbox: Path) -> int:
    import sqlite3

    db = sqlite3.connect(outbox)
    try:
        (last,) = db.execute("SELECT value FROM meta WHERE key = 'last_seq'").fetchone()
        return int(last)
    finally:
        db.close()


if __name__ == "__main__":
    sys.exit(main())
