"""Export memory and speed: streaming (chunked) against loading every row first, side by side.

    .venv/bin/python bench/export.py [--nodes 20] [--days 5]

Starts a private influxd, writes minute readings (PM2.5 and PM10 with raw, n, cal, seq, flags) for
NODES nodes over DAYS days, then exports them as CSV to /dev/null with `gateway.export.write`, its rows
coming either streamed (chunked /query, written as they arrive) or loaded (one unchunked query, every
row in memory first). Two rounds of each; prints rows/s and the peak Python heap (tracemalloc) of
each, and the ratios of round 2. Then the time to build the report for the same data.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import tracemalloc
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from contract.metrics import Metric
from gateway import devservices, export
from gateway.config import InfluxConfig
from gateway.report import data, render
from gateway.stores.influx_read import InfluxReader
from gateway.stores.influx_v1 import InfluxV1

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


class _Loaded:
    """The same export code, but its rows come from one unchunked query, all in memory first."""

    def __init__(self, store: InfluxV1) -> None:
        self.store = store

    def query(self, influxql: str) -> list[dict[str, Any]]:
        return self.store.query(influxql)

    def stream(self, influxql: str, chunk_size: int = 10_000) -> Iterator[dict[str, Any]]:
        return iter(self.store.query(influxql))

    def stream_cells(
        self, influxql: str, columns: list[str], chunk_size: int = 10_000
    ) -> Iterator[list[str]]:
        return self.store.stream_cells(influxql, columns, chunk_size)

    def close(self) -> None:
        self.store.close()


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

            def run(reader: object) -> int:
                with open(os.devnull, "w") as out:
                    return export.write(reader, req, out, "csv")  # type: ignore[arg-type]

            store.query('SELECT count("seq") FROM "reading"')  # let influxd settle after the writes
            results = {}
            for round_ in (1, 2):  # the second round is the one compared; the first warms caches
                readers = (("streamed", InfluxReader(store)), ("loaded", InfluxReader(_Loaded(store))))
                for label, reader in readers:
                    results[label] = measure(f"{label} (round {round_})", lambda r=reader: run(r))
            (t_s, peak_s, _), (t_l, peak_l, _) = results["streamed"], results["loaded"]
            print(
                f"round 2: peak heap loaded/streamed {peak_l / peak_s:.1f}x; "
                f"time streamed/loaded {t_s / t_l:.2f}x"
            )
            t = time.perf_counter()
            report = data.collect(
                InfluxReader(store),
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
