"""Where the alert engine's CPU goes per reading: cProfile of `Engine.on_readings` with every preset.

    .venv/bin/python bench/profile_alerts.py [--n 100000] [--top 14]

Feeds the same payloads as bench/ingest.py (20 nodes, one reading a minute each) through the real
engine with the eight rules of the who-2021, us-epa and mns-4585-2016 presets, in batches of 500 as
the gateway stores them. Prints the CPU time per reading without the profiler while the 24-hour
windows fill (the first 18 hours of each node) and for half of the rest (steady state), then the
functions with the most time of their own over the last quarter or so.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import PREFIX, _payloads
from gateway.alerts.engine import Engine
from gateway.alerts.presets import expand
from gateway.validate import parse_reading


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--top", type=int, default=14)
    args = parser.parse_args()
    rules = [r for p in ("who-2021", "us-epa", "mns-4585-2016") for r in expand(p)]
    readings = [parse_reading(t, p, PREFIX) for t, p in _payloads(args.n, 20)]
    engine = Engine(rules, clock=lambda: datetime.now(UTC))
    batches = [readings[i : i + 500] for i in range(0, len(readings), 500)]
    # A 24-hour window counts from 18 hours of one-minute readings: until then every rule says why
    # it is not evaluated. The rest is the steady state of a site that has been running a day.
    fill = next((i for i, b in enumerate(batches) if (b[-1].seq - 1) * 60 >= 18 * 3600), len(batches))
    half = fill + (len(batches) - fill) // 2
    for label, part in (("windows filling", batches[:fill]), ("steady", batches[fill:half])):
        started = time.process_time()
        for batch in part:
            engine.on_readings(batch)
        n = sum(len(b) for b in part)
        if n:
            per = (time.process_time() - started) / n * 1e6
            print(
                f"{per:.1f} µs of CPU per reading in the alert engine, {label} "
                f"({len(rules)} rules, no profiler)"
            )
    profile = cProfile.Profile()
    profile.enable()
    for batch in batches[half:]:
        engine.on_readings(batch)
    profile.disable()
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
