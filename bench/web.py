"""Dashboard weight and speed: bytes each page needs with its CSS and scripts (uncompressed, and on
the wire with gzip as a browser asks for it), the time to fetch that at 256 kbit/s, and server time
per request for pages and API routes, side by side in one run.

    .venv/bin/python -m bench.web [--rounds 20]

Serves the test site (tests/webdata.py: 3 nodes, 8 days of 5-minute readings, 4 alert events) from
a private influxd on this machine.
"""

from __future__ import annotations

import argparse
import re
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from gateway import devservices
from tests.webdata import served_site

PAGES = ["/", "/node/tsagaan/haul-road", "/alerts", "/download"]
API = [
    "/api/v1/nodes",
    "/api/v1/latest",
    "/api/v1/nodes/tsagaan/haul-road/series?every=1h&start=2026-11-15&end=2026-11-22",
    "/api/v1/alerts",
]
SLOW_LINK_BPS = 256_000 / 8  # a weak 2G/3G phone link, bytes per second


def _fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        data: bytes = resp.read()
    return data


def _wire(url: str) -> int:
    """Bytes on the wire when the browser accepts gzip (as every browser does)."""
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return len(resp.read())


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="minewatch-bench-") as tmp:
        influxd = devservices.influxd(Path(tmp))
        influxd.start()
        try:
            with served_site(influxd.port) as site:
                print(f"{'page':<28} {'raw KB':>8} {'wire KB':>8} {'s @256k':>8}")
                for path in PAGES:
                    html = _fetch(site.url + path)
                    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html.decode())
                    urls = [site.url + path, *(site.url + a for a in assets)]
                    raw = sum(len(_fetch(u)) for u in urls)
                    packed = sum(_wire(u) for u in urls)
                    print(
                        f"{path:<28} {raw / 1000:>8.1f} {packed / 1000:>8.1f} {packed / SLOW_LINK_BPS:>8.1f}"
                    )
                print(f"\n{'request':<28} {'median ms':>10} {'p90 ms':>8} {'x /latest':>10}")
                timings: dict[str, list[float]] = {}
                for path in PAGES + API:
                    _fetch(site.url + path)  # warm up
                    samples = []
                    for _ in range(args.rounds):
                        t0 = time.perf_counter()
                        _fetch(site.url + path)
                        samples.append((time.perf_counter() - t0) * 1000)
                    timings[path] = sorted(samples)
                base = statistics.median(timings["/api/v1/latest"])
                for path, samples in timings.items():
                    med = statistics.median(samples)
                    p90 = samples[int(0.9 * (len(samples) - 1))]
                    print(f"{path[:28]:<28} {med:>10.1f} {p90:>8.1f} {med / base:>10.2f}")
        finally:
            influxd.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
