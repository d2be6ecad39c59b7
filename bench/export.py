"""Export memory and speed: streaming (chunked) against loading every row first, side by side.

    .venv/bin/python bench/export.py [--nodes 20] [--days 5]

Starts a private influxd, writes minute readings (PM2.5 and PM10 with raw, n, cal, seq, flags) for
NODES nodes over DAYS days, then exports them to /dev/null twice: with `gateway.export.write`
(chunked /query, rows written as they arrive) and with one unchunked `query` holding all rows.
Prints rows/s and the peak Python heap (tracemalloc) of each, and their ratio; then the time to
build the report for the same data.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gateway import devservices, export
from gateway.config import InfluxConfig
from gateway.report import data, render
from gateway.stores.influx_v1 import InfluxV1
from hardware.base import Metric

DAY0 = datetime(2026, 1, 1, tzinfo=UTC)


def fill(store: InfluxV1, nodes: int, days: int) -> int:
    t0 = int(DAY0.timestamp() * 1000)
    lines: list[str] = []
    total = 0
    for n in range(nodes):
        for m in range(1, days * 1440 + 1):
            pm = 10 + (m * 7919 + n * 104729) % 997 / 10
            lines.append(
                f"reading,node=node-{n:02d},site=bench pm2_5={pm},pm2_5_raw={pm * 1.1},pm2_5_n=60i,"
                f'pm2_5_cal="pms5003-{n:02d}@2026-01-01",pm10={pm * 1.6},pm10_raw={pm * 1.7},pm10_n=60i,'
                f'seq={m}i,flags="" {t0 + m * 60_000}'
            )
            if len(lines) == 20_000:
                store.write(lines)
                total += len(lines)
                lines = []
    store.write(lines)
    return total + len(lines)


def measure(label: str, fn: object) -> tuple[float, int, int]:
    tracemalloc.start()
    t = time.perf_counter()
    rows = fn()  # type: ignore[operator]
    elapsed = time.perf_counter() - t
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{label:<28} {rows:>9} rows  {rows / elapsed:>9.0f} rows/s  peak heap {peak / 2**20:8.1f} MiB")
    return elapsed, peak, rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--days", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        influxd = devservices.influxd(Path(tmp))
        influxd.start()
        try:
            url = f"http://127.0.0.1:{influxd.port}"
            store = InfluxV1(InfluxConfig(url=url, database="bench", api="v1"))  # type: ignore[arg-type]
            store.ensure_database()
            written = fill(store, args.nodes, args.days)
            print(f"{written} readings: {args.nodes} nodes x {args.days} days of minute data")
            req = export.ExportRequest(
                site="bench",
                nodes=[],
                start=DAY0,
                end=DAY0 + timedelta(days=args.days),
                metrics=[Metric.PM2_5, Metric.PM10],
            )

            def streamed() -> int:
                with open(os.devnull, "w") as out:
                    return export.write(store, req, out, "csv")

            def loaded() -> int:
                rows = store.query(export.reading_query(req))  # every row in memory at once
                with open(os.devnull, "w") as out:
                    for row in rows:
                        out.write(",".join("" if v is None else str(v) for v in row.values()) + "\n")
                return len(rows)

            t_s, peak_s, _ = measure("streamed (chunked, export)", streamed)
            t_l, peak_l, _ = measure("loaded (one query)", loaded)
            print(f"peak heap ratio loaded/streamed: {peak_l / peak_s:.1f}x; time ratio: {t_s / t_l:.2f}x")
            t = time.perf_counter()
            report = data.collect(
                store,
                site="bench",
                start=req.start,
                end=req.end,
                generated=datetime.now(UTC),
                standards=["who-2021"],
            )
            html = render.html(report)
            elapsed = time.perf_counter() - t
            print(
                f"report (all tables, {len(report.metrics)} plots): {elapsed:.1f} s, "
                f"{len(html) / 2**20:.1f} MiB HTML"
            )
        finally:
            influxd.stop()


if __name__ == "__main__":
    main()
