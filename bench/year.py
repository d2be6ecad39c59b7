"""A synthetic year in a private influxd: export, report and /series over a year against a day.

    .venv/bin/python bench/year.py [--nodes 5] [--days 365] [--skip-pdf]

Starts a private influxd, writes minute readings (PM2.5 and PM10 with raw, n, cal, seq, flags) for
NODES nodes over DAYS days, rolls them up (`rollup --rebuild`'s code), then runs each measurement
in a fresh interpreter (its peak resident memory from wait4) and prints, side by side in one run:

- export of every reading as CSV to /dev/null against `influx -execute <the same query> -format
  csv` to /dev/null (rows/s and their ratio; the goal is >= 0.8x),
- the report (HTML, and PDF unless --skip-pdf) for the whole period against one day (time, ratio),
- /series (gateway.web.views.bucketed, the API's buckets) over the period against one day:
  median and p95 of 20 calls.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

DAY0 = datetime(2025, 1, 1, tzinfo=UTC)
DB = "bench"


def fill(url: str, nodes: int, days: int) -> int:
    from gateway.config import InfluxConfig
    from gateway.stores.influx_v1 import InfluxV1

    store = InfluxV1(InfluxConfig(url=url, database=DB, api="v1"))  # type: ignore[arg-type]
    store.ensure_database()
    t0 = int(DAY0.timestamp() * 1000)
    total = 0
    for n in range(nodes):
        lines: list[str] = []
        cal = f"pms5003-{n:02d}@2025-01-01"
        for m in range(1, days * 1440 + 1):
            pm = 10 + (m * 7919 + n * 104729) % 997 / 10
            flags = "sensor_fault" if m % 1000 == 0 else ""
            lines.append(
                f"reading,node=node-{n:02d},site=bench pm2_5={pm},pm2_5_raw={pm * 1.1},pm2_5_n=60i,"
                f'pm2_5_cal="{cal}",pm10={pm * 1.6},pm10_raw={pm * 1.7},pm10_n=60i,'
                f'seq={m}i,flags="{flags}" {t0 + m * 60_000}'
            )
            if len(lines) == 20_000:
                store.write(lines)
                total += len(lines)
                lines = []
        store.write(lines)
        total += len(lines)
    store.close()
    return total


def rebuild(url: str, days: int) -> int:
    from gateway import dataset
    from gateway.config import InfluxConfig
    from gateway.stores import open_reader, open_store, rollups_for
    from gateway.stores.rollups import BUCKETS, Recompute

    cfg = InfluxConfig(url=url, database=DB, api="v1")  # type: ignore[arg-type]
    reader, store = open_reader(cfg), open_store(cfg)
    backend = rollups_for(store, cfg)
    end = DAY0 + timedelta(days=days)
    nodes = sorted(r for r in {str(x["node"]) for x in reader.aggregate(_span(end), "seq", ["count"])})
    intervals = {n: dataset.interval_s(reader, "bench", n, DAY0, end) for n in nodes}
    metrics = backend.metric_fields()
    points = sum(backend.recompute(Recompute("bench", [], DAY0, end, p), metrics, intervals) for p in BUCKETS)
    reader.close()
    store.close()
    return points


def _span(end: datetime) -> Any:
    from gateway.stores import Span

    return Span("bench", [], DAY0, end)


# --- children: one measurement each, in a fresh interpreter --------------------------------------


def child(name: str, url: str, days: int, skip_pdf: bool) -> dict[str, Any]:
    from contract.metrics import Metric
    from gateway import export
    from gateway.config import InfluxConfig
    from gateway.stores import open_reader

    reader = open_reader(InfluxConfig(url=url, database=DB, api="v1"))  # type: ignore[arg-type]
    end = DAY0 + timedelta(days=days)
    last_day = end - timedelta(days=1)
    if name == "export":
        req = export.ExportRequest("bench", [], DAY0, end, [Metric.PM2_5, Metric.PM10])
        queries: list[str] = []
        t = time.perf_counter()
        with open(os.devnull, "w") as out:
            rows = export.write(reader, req, out, "csv", trace=queries.append)
        return {"seconds": time.perf_counter() - t, "rows": rows, "query": queries[0]}
    if name.startswith("report"):
        from gateway.report import data, render

        start = DAY0 if name == "report-all" else last_day
        t = time.perf_counter()
        report = data.collect(
            reader, site="bench", start=start, end=end, generated=end, standards=["who-2021"]
        )
        html = render.html(report)
        queried = time.perf_counter() - t
        if not skip_pdf:
            with tempfile.TemporaryDirectory() as tmp:
                render.pdf(html, Path(tmp) / "r.pdf")
        return {"seconds": time.perf_counter() - t, "queried_s": queried, "html_mb": len(html) / 2**20}
    if name.startswith("series"):
        from gateway.web import views
        from gateway.web.params import auto_every

        start = DAY0 if name == "series-all" else last_day
        every = auto_every(start, end)
        times = []
        for _ in range(20):
            t = time.perf_counter()
            s = views.bucketed(reader, "bench", "node-00", ["pm2_5", "pm10"], start, end, every)
            times.append(time.perf_counter() - t)
        times.sort()
        return {
            "seconds": statistics.median(times),
            "p95": times[int(len(times) * 0.95) - 1],
            "every_s": every,
            "buckets": len(s.times),
        }
    raise SystemExit(f"unknown child {name}")


def run_child(args: list[str]) -> tuple[dict[str, Any], float]:
    """Run a measurement, return its JSON and its peak resident memory in MiB."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{args[2:4]} failed ({proc.returncode})")
    return (json.loads(out) if out.strip() else {}), usage.ru_maxrss / 1024


def cli_csv(port: int, query: str) -> tuple[float, float]:
    """The database's own CSV dump of the same query: seconds and peak memory of the `influx` CLI."""
    t = time.perf_counter()
    with open(os.devnull, "wb") as out:
        proc = subprocess.Popen(
            [
                "influx",
                "-host",
                "127.0.0.1",
                "-port",
                str(port),
                "-database",
                DB,
                "-format",
                "csv",
                "-precision",
                "rfc3339",
                "-execute",
                query,
            ],
            stdout=out,
        )
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("influx -execute failed")
    return time.perf_counter() - t, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--skip-pdf", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.url, args.days, args.skip_pdf)))
        return
    from gateway import devservices

    with tempfile.TemporaryDirectory() as tmp:
        influxd = devservices.influxd(Path(tmp))
        influxd.start()
        try:
            url = f"http://127.0.0.1:{influxd.port}"
            t = time.perf_counter()
            written = fill(url, args.nodes, args.days)
            print(
                f"{written} readings ({args.nodes} nodes x {args.days} days of minute data) "
                f"written in {time.perf_counter() - t:.0f} s"
            )
            t = time.perf_counter()
            points = rebuild(url, args.days)
            print(f"rollup --rebuild: {points} roll-up points in {time.perf_counter() - t:.1f} s")
            base = [sys.executable, __file__, "--url", url, "--days", str(args.days)]
            base += ["--skip-pdf"] if args.skip_pdf else []
            results: dict[str, tuple[dict[str, Any], float]] = {}
            for name in ("export", "report-all", "report-day", "series-all", "series-day"):
                results[name] = run_child([*base, "--child", name])
            cli_s, cli_mb = cli_csv(influxd.port, results["export"][0]["query"])
            exp, exp_mb = results["export"]
            rows = exp["rows"]
            print(f"\n| what | {args.days} days | one day / reference | ratio | peak RSS (MiB) |")
            print("| --- | --- | --- | --- | --- |")
            print(
                f"| export CSV, {rows} rows | {rows / exp['seconds']:.0f} rows/s ({exp['seconds']:.1f} s) | "
                f"influx -format csv: {rows / cli_s:.0f} rows/s ({cli_s:.1f} s) | "
                f"{cli_s / exp['seconds']:.2f}x | {exp_mb:.0f} (influx CLI {cli_mb:.0f}) |"
            )
            (ra, ra_mb), (rd, rd_mb) = results["report-all"], results["report-day"]
            what = "HTML" if args.skip_pdf else "HTML + PDF"
            print(
                f"| report {what} | {ra['seconds']:.1f} s (queries+HTML {ra['queried_s']:.1f} s) | "
                f"{rd['seconds']:.1f} s | {ra['seconds'] / rd['seconds']:.1f}x | {ra_mb:.0f} / {rd_mb:.0f} |"
            )
            (sa, sa_mb), (sd, sd_mb) = results["series-all"], results["series-day"]
            print(
                f"| /series node-00 (every {sa['every_s']} s, {sa['buckets']} buckets) | median "
                f"{sa['seconds'] * 1000:.0f} ms, p95 {sa['p95'] * 1000:.0f} ms | median "
                f"{sd['seconds'] * 1000:.0f} ms, p95 {sd['p95'] * 1000:.0f} ms (every {sd['every_s']} s) | "
                f"{sa['seconds'] / sd['seconds']:.1f}x | {sa_mb:.0f} / {sd_mb:.0f} |"
            )
        finally:
            influxd.stop()


if __name__ == "__main__":
    main()
