"""What keeping two readings with one `ts` costs a write: the gateway's InfluxV1.write (which looks up
what is stored at the batch's times first, gateway/stores/shared_ts.py) against a bare POST of the
same lines to /write, side by side in one run, on a private influxd.

    .venv/bin/python bench/shared_ts.py [--batches 40] [--nodes 20] [--per-node 50]

Each batch is `nodes` x `per-node` readings (1000 by default: the gateway's batch size), consecutive
minutes per node, written in turn by both writers into databases of their own, so each lookup scans
what a live gateway would. Then `stepped back`: the same times again with new seqs (a clock set back
across the whole batch, the worst case: every reading is kept beside another and both are flagged).
Prints the median milliseconds per batch (and of the lookup alone, `keep_both`, run just before the
write makes it again) and the median of the batches' paired ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

import urllib3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contract.wire import MetricValue, ReadingPayload  # noqa: E402  # after the path
from gateway import devservices  # noqa: E402
from gateway.config import InfluxConfig  # noqa: E402
from gateway.points import to_line  # noqa: E402
from gateway.stores.influx_v1 import InfluxV1  # noqa: E402
from gateway.stores.shared_ts import keep_both  # noqa: E402

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def batch(k: int, nodes: int, per_node: int, seq_offset: int = 0) -> list[str]:
    lines = []
    for n in range(nodes):
        for m in range(per_node):
            minute = k * per_node + m
            pm = 10 + (minute * 7919 + n * 104729) % 997 / 10
            reading = ReadingPayload(
                schema=1,
                site="bench",
                node=f"node-{n:02d}",
                seq=minute + 1 + seq_offset,
                ts=T0 + timedelta(minutes=minute),
                period_s=60,
                metrics={
                    "pm2_5": MetricValue(value=pm, raw=pm * 1.1, n=60, cal="pms5003-a@2026-01-01"),
                    "pm10": MetricValue(value=pm * 1.6, raw=pm * 1.7, n=60),
                },  # type: ignore[dict-item]
                flags=[],
            )
            lines.append(to_line(reading))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--per-node", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        influxd = devservices.influxd(Path(tmp))
        influxd.start()
        try:
            url = f"http://127.0.0.1:{influxd.port}"
            http = urllib3.PoolManager()
            guarded = InfluxV1(InfluxConfig(url=url, database="guarded", api="v1"))  # type: ignore[arg-type]
            guarded.ensure_database()
            guarded.query('CREATE DATABASE "plain"')

            def plain(lines: list[str]) -> None:
                query = urlencode({"db": "plain", "precision": "ms"})
                resp = http.request("POST", f"{url}/write?{query}", body="\n".join(lines).encode())
                assert resp.status == 204, resp.data

            def timed(write: object, lines: list[str]) -> float:
                t = time.perf_counter()
                write(lines)  # type: ignore[operator]
                return (time.perf_counter() - t) * 1000

            def compare(label: str, seq_offset: int) -> None:
                bare, lookup, kept = [], [], []
                for k in range(args.batches):
                    lines = batch(k, args.nodes, args.per_node, seq_offset)
                    bare.append(timed(plain, lines))
                    # the lookup and rewrite alone, as the write below makes them first
                    lookup.append(timed(lambda ls: keep_both(ls, guarded.query), lines))
                    kept.append(timed(guarded.write, lines))
                ratios = [g / p for g, p in zip(kept, bare, strict=True)]
                size = args.nodes * args.per_node
                print(
                    f"{label:<12} {args.batches} batches of {size}: "
                    f"bare POST {statistics.median(bare):6.1f} ms, lookup alone "
                    f"{statistics.median(lookup):6.1f} ms, InfluxV1.write {statistics.median(kept):6.1f} ms "
                    f"per batch (medians); paired ratio write/bare {statistics.median(ratios):.2f}x"
                )

            compare("fresh", 0)
            compare("stepped back", 10**6)  # the same times, other seqs: every reading shares its ts
            rows = guarded.query('SELECT count("seq") FROM "reading"')
            flagged = guarded.query('SELECT count("gateway_flags") FROM "reading"')
            print(f"guarded database: {rows[0]['count']} readings, {flagged[0]['count']} flagged ts_shared")
            guarded.close()
        finally:
            influxd.stop()


if __name__ == "__main__":
    main()
