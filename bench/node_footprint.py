"""What the sensor libraries cost the node on a 512 MB Pi Zero 2 W: peak memory (RSS) and import time
of a fresh Python importing each driver's library, and of the whole node, side by side in one run.

    .venv/bin/python -m bench.node_footprint [--rounds 5]

Each figure is the median over the rounds of a new interpreter (`python -c "import …"`), so the
interpreter's own ~10 MB is in every row; the ratio column divides by the bare interpreter.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys

CASES = [
    ("python (nothing imported)", "pass"),
    ("pydantic (every config and payload model)", "import pydantic; pydantic.BaseModel"),
    ("pyserial", "import serial"),
    ("adafruit_pm25 (UART)", "import adafruit_pm25.uart"),
    ("adafruit_pm25 (I2C) + bus_device", "import adafruit_pm25.i2c"),
    ("adafruit_ads1x15", "import adafruit_ads1x15.ads1115, adafruit_ads1x15.analog_in"),
    ("adafruit_bme280", "import adafruit_bme280.basic"),
    ("adafruit_sht4x", "import adafruit_sht4x"),
    ("minimalmodbus", "import minimalmodbus"),
    ("Blinka I2C by bus number", "import adafruit_extended_bus"),
    ("hardware (every driver registered)", "import hardware; hardware.load_all()"),
    ("hardware.pms5003 (a PMS5003 kit's driver)", "import hardware.pms5003"),
    ("node.service (the whole node)", "import node.service"),
]

PROBE = (
    "import resource, time; t = time.perf_counter(); {stmt}; "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
)


def measure(stmt: str, rounds: int) -> tuple[float, float]:
    """(median import seconds, median peak RSS in MB)."""
    times, rss = [], []
    for _ in range(rounds):
        out = subprocess.run(
            [sys.executable, "-c", PROBE.format(stmt=stmt)], capture_output=True, text=True, check=True
        ).stdout.split()
        times.append(float(out[0]))
        rss.append(int(out[1]) / 1024)
    return statistics.median(times), statistics.median(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = [(label, *measure(stmt, args.rounds)) for label, stmt in CASES]
    base_rss = rows[0][2]
    print(f"{'import':<44} {'time ms':>8} {'peak RSS MB':>12} {'× bare':>7}")
    for label, seconds, rss in rows:
        print(f"{label:<44} {seconds * 1000:>8.0f} {rss:>12.1f} {rss / base_rss:>7.2f}")


if __name__ == "__main__":
    main()
