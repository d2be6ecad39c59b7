"""Where the gateway's CPU goes per reading: cProfile over validate -> line protocol -> batch.

    .venv/bin/python bench/profile_ingest.py [--n 20000] [--top 15]

Feeds N ready-made messages (the same payloads as bench/ingest.py) through the real `Ingest` with a
store that only keeps the lines, so MQTT and HTTP are out of the picture, and prints the CPU time per
reading without the profiler, then the functions with the most time of their own under it.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.ingest import PREFIX, _payloads
from gateway.ingest import Ingest
from gateway.subscriber import Message


class LinesOnly:
    def __init__(self) -> None:
        self.n = 0

    def write(self, lines: list[str]) -> None:
        self.n += len(lines)

    def close(self) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    messages = [
        Message(t, p, i, 1, False, time.monotonic()) for i, (t, p) in enumerate(_payloads(args.n, 20))
    ]

    def run() -> None:
        ingest = Ingest(LinesOnly(), lambda m: None, prefix=PREFIX, max_size=1000)
        for msg in messages:
            ingest.handle(msg)
            if ingest.pending >= 1000:
                ingest.flush()
        ingest.flush()

    run()  # warm up
    t0 = time.process_time()
    run()
    per = (time.process_time() - t0) / len(messages) * 1e6
    print(f"{per:.1f} µs of CPU per reading (validate, dedup filter, line protocol, batch), no profiler")
    profile = cProfile.Profile()
    profile.runcall(run)
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
