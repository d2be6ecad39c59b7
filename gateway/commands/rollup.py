"""`minewatch-gateway rollup --rebuild`: recompute a site's hourly and daily roll-ups from raw.

The running gateway keeps the roll-ups of what it stores (gateway/rollup.py); this fills them in
for history stored before, or written around the gateway (an import, a restore). It only rewrites
derived points, so running it again, or over a period already rolled up, is harmless.
"""

from __future__ import annotations

import argparse
import sys
from datetime import timedelta
from typing import Any

from gateway import dataset
from gateway import timerange as q
from gateway.config import load
from gateway.stores import Span, open_reader, open_store, rollups_for
from gateway.stores.rollups import BUCKETS, Recompute

DAY = timedelta(days=1)


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "rollup",
        help="recompute the hourly and daily roll-ups of a site from its raw readings",
        description="Recompute reading_1h and reading_1d for every node of a site (or the nodes "
        "given) over whole UTC days covering --start..--end, from the raw readings.",
    )
    parser.add_argument("--config", required=True, help="path to gateway.toml (for [influxdb])")
    parser.add_argument("--rebuild", action="store_true", required=True, help="recompute from raw")
    parser.add_argument("--site", required=True)
    parser.add_argument("--node", action="append", default=[], help="only this node (repeatable)")
    parser.add_argument("--start", required=True, help="UTC date or time; rounded down to its day")
    parser.add_argument("--end", required=True, help="UTC date or time; rounded up to a whole day")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    start, end = q.parse_time(args.start, "--start"), q.parse_time(args.end, "--end")
    q.check_range(start, end)
    q.check_ids(args.site, args.node)
    cfg = load(args.config)
    start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    if end != end.replace(hour=0, minute=0, second=0, microsecond=0):
        end = end.replace(hour=0, minute=0, second=0, microsecond=0) + DAY
    reader = open_reader(cfg.influxdb)
    store = open_store(cfg.influxdb)
    try:
        span = Span(args.site, list(args.node), start, end)
        nodes = sorted({str(r["node"]) for r in reader.aggregate(span, "seq", ["count"]) if r["count"]})
        intervals = {n: dataset.interval_s(reader, args.site, n, start, end) for n in nodes}
        backend = rollups_for(store, cfg.influxdb)
        metrics = backend.metric_fields()
        for period in BUCKETS:
            job = Recompute(args.site, list(args.node), start, end, period)
            points = backend.recompute(job, metrics, intervals)
            print(f"{period}: {points} roll-up points for {len(nodes)} nodes", file=sys.stderr)
    finally:
        reader.close()
        store.close()
    return 0
