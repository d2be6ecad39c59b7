"""What the sensor libraries cost the node on a 512 MB Pi Zero 2 W: peak memory (RSS) and import time
of a fresh Python importing each driver's library, and of the whole node, side by side in one run.

    .venv/bin/python -m bench.node_footprint [--rounds 5] [--layers]

Each figure is the median over the rounds of a new interpreter (`python -c "import …"`), so the
interpreter's own ~10 MB is in every row; the ratio column divides by the bare interpreter.

`--layers` shows instead what the node's resident memory is made of: one interpreter imports what a
PMS5003 node imports, layer after layer in the order the node needs them, and prints the resident
set (VmRSS, Linux) after each, so every row is what that layer adds to those above it (the median
over the rounds). The last rows are what a node without them is spared: the other drivers, and the
calibration package (loaded only for a sensor with a `calibration`).
"""

from __future__ import annotations

import argparse
import itertools
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

LAYERS = [
    ("python (nothing imported)", "pass"),
    ("hashlib (OpenSSL's libcrypto: pydantic and paho use it)", "import hashlib"),
    ("ssl (paho imports it, TLS on or off)", "import ssl"),
    ("paho-mqtt (+ urllib.request, http.client, email)", "import paho.mqtt.client"),
    ("sqlite3 (the outbox)", "import sqlite3"),
    ("pydantic, imported", "import pydantic"),
    ("pydantic, its first model built", "import pydantic\nclass _First(pydantic.BaseModel): x: int"),
    ("contract (wire, status, words, config files)", "import contract.wire, contract.status, contract.i18n"),
    ("hardware.pms5003 (+ pyserial, adafruit_pm25, Blinka)", "import hardware.pms5003"),
    ("node (config, outbox, publisher, sampler, CLI)", "import node.cli, node.commands.run, node.service"),
    ("calibration (not loaded without `calibration`)", "import calibration.presets"),
    ("every other driver (not loaded)", "import hardware; hardware.load_all()"),
]

LAYER_PROBE = """
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS'):
            return int(line.split()[1]) / 1024
out = []
{steps}
print(' '.join(map(str, out)))
"""


def layers(rounds: int) -> list[tuple[str, float]]:
    """(layer, median MB it adds to those above it), in the node's order."""
    steps = "\n".join(f"{stmt}\nout.append(rss())" for _, stmt in LAYERS)
    runs = []
    for _ in range(rounds):
        code = LAYER_PROBE.format(steps=steps)
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        totals = [float(x) for x in out.split()]
        runs.append([totals[0], *(b - a for a, b in itertools.pairwise(totals))])
    return [(label, statistics.median(r[i] for r in runs)) for i, (label, _) in enumerate(LAYERS)]


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
    parser.add_argument("--layers", action="store_true", help="what the node's resident memory is made of")
    args = parser.parse_args()
    if args.layers:
        total = 0.0
        print(f"{'layer, in the order a PMS5003 node imports them':<56} {'adds MB':>8} {'total MB':>9}")
        for i, (label, mb) in enumerate(layers(args.rounds)):
            total += mb
            spared = i >= len(LAYERS) - 2
            print(f"{label:<56} {mb:>8.1f}" + ("" if spared else f" {total:>9.1f}"))
            if i == len(LAYERS) - 3:
                print(f"{'= a PMS5003 node after its imports':<56} {'':>8} {total:>9.1f}")
        return
    rows = [(label, *measure(stmt, args.rounds)) for label, stmt in CASES]
    base_rss = rows[0][2]
    print(f"{'import':<44} {'time ms':>8} {'peak RSS MB':>12} {'× bare':>7}")
    for label, seconds, rss in rows:
        print(f"{label:<44} {seconds * 1000:>8.0f} {rss:>12.1f} {rss / base_rss:>7.2f}")


if __name__ == "__main__":
    main()
