"""A synthetic year in a private influxd: every figure of issue 23's table, side by side in one run.

    .venv/bin/python -u bench/year.py [--nodes 50] [--days 365] [--skip-pdf] [--cli-nodes N]

Starts a private influxd and writes minute readings (PM2.5 and PM10 with raw, n, cal; seq, flags;
a 40-minute outage a month per node, its `seq` lost) for NODES nodes over the DAYS days up to now,
in one database, and the last day of them alone in another; posts line protocol in batches of a
day of every node (no shared-ts lookup: this is a load, not ingest). Rolls the year up with
`rollup --rebuild`'s code (the hourly facts included), then runs each measurement in a fresh
interpreter (its peak resident memory from wait4) and prints:

- export of every reading as CSV to /dev/null against `influx -execute <the same query> -format
  csv` to /dev/null: the CLI holds every row it prints (3.8 GB for 2.6 M rows), so it runs on the
  same query one node at a time (the same rows; `--cli-nodes` runs only the first N of them, and
  the rate is of those), and the ratio is of the rates (goal >= 0.8x);
- the report, HTML and PDF (unless --skip-pdf), for the whole period against one day;
- the dashboard's node page and /api/v1 series over the whole period (a year stored) against the
  node page with a day stored and the series over one day: median and p95 of 20 requests over
  HTTP to the real app;
- the gateway's start (`minewatch-gateway run`, with the WHO 2021 alert preset, whose 24-hour means
  refill from the last day) until it tells systemd READY=1, with the year stored against a day
  stored; peak memory of each.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
YEAR_DB, DAY_DB = "bench", "bench_day"
DAY = timedelta(days=1)


def _end() -> datetime:
    """The synthetic data ends now (to the minute): the gateway's start reads the last 24 hours."""
    now = datetime.now(UTC)
    return now.replace(second=0, microsecond=0)


def _floor_day(ts: datetime) -> datetime:
    return ts.replace(hour=0, minute=0, second=0, microsecond=0)


def fill(url: str, db: str, nodes: int, start: datetime, end: datetime) -> int:
    """Minute readings in (start, end], day by day for every node, straight to /write."""
    import urllib3

    http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=5, read=600))
    http.request("POST", f"{url}/query", fields={"q": f'CREATE DATABASE "{db}"'})
    write = f"{url}/write?db={db}&precision=ms"
    t0 = int(start.timestamp() * 1000)
    minutes = int((end - start).total_seconds() // 60)
    cal = [f"pms5003-{n:02d}@2025-01-01" for n in range(nodes)]
    heads = [f"reading,node=node-{n:02d},site=bench " for n in range(nodes)]

    def post(body: bytes) -> None:
        for attempt in range(20):  # influxd's cache can be full while it snapshots: wait
            resp = http.request("POST", write, body=body)
            if resp.status == 204:
                return
            time.sleep(1 + attempt)
        raise SystemExit(f"/write answered {resp.status}: {resp.data[:200]!r}")

    pool = ThreadPoolExecutor(2)  # two writes at once: influxd parses one while it stores the other
    pending: list[Future[None]] = []
    total = 0
    for day0 in range(1, minutes + 1, 1440):
        lines: list[str] = []
        for n in range(nodes):
            head, c = heads[n], cal[n]
            for m in range(day0, min(day0 + 1440, minutes + 1)):
                if (m + n * 997) % 43200 < 40:  # a 40-minute outage a month: its readings are lost
                    continue
                pm = 10 + (m * 7919 + n * 104729) % 997 / 10
                flags = "sensor_fault" if m % 1000 == 0 else ""
                lines.append(
                    f'{head}pm2_5={pm},pm2_5_raw={pm * 1.1},pm2_5_n=60i,pm2_5_cal="{c}",'
                    f'pm10={pm * 1.6},pm10_raw={pm * 1.7},pm10_n=60i,seq={m}i,flags="{flags}",'
                    f"period_s=60i {t0 + m * 60_000}"
                )
        for i in range(0, len(lines), 40_000):
            pending.append(pool.submit(post, "\n".join(lines[i : i + 40_000]).encode()))
        while len(pending) > 4:  # two days in flight while the next is made
            pending.pop(0).result()
        total += len(lines)
    for f in pending:
        f.result()
    pool.shutdown()
    return total


def _cfg(url: str, db: str) -> Any:
    """A year's queries take longer than a live gateway's 10 s: the bench waits for them."""
    from gateway.config import InfluxConfig

    return InfluxConfig(url=url, database=db, api="v1", timeout_s=300)  # type: ignore[arg-type]


def rebuild(url: str, start: datetime, end: datetime) -> int:
    from gateway import dataset
    from gateway.stores import open_reader, open_store, rollups_for
    from gateway.stores.rollups import BUCKETS, Recompute

    cfg = _cfg(url, YEAR_DB)
    reader, store = open_reader(cfg), open_store(cfg)
    backend = rollups_for(store, cfg)
    nodes = [node for _, node in reader.nodes("bench")]
    intervals = {n: dataset.interval_s(reader, "bench", n, start, end) for n in nodes}
    metrics = backend.metric_fields()
    lo, hi = _floor_day(start), _floor_day(end) + DAY
    points = sum(backend.recompute(Recompute("bench", [], lo, hi, p), metrics, intervals) for p in BUCKETS)
    reader.close()
    store.close()
    return points


# --- children: one measurement each, in a fresh interpreter --------------------------------------


def child(name: str, url: str, start: datetime, end: datetime, skip_pdf: bool) -> dict[str, Any]:
    from contract.metrics import Metric
    from gateway import export
    from gateway.stores import open_reader

    last_day = end - DAY
    if name == "export":
        reader = open_reader(_cfg(url, YEAR_DB))
        req = export.ExportRequest("bench", [], start, end, [Metric.PM2_5, Metric.PM10])
        queries: list[str] = []
        t = time.perf_counter()
        with open(os.devnull, "w") as out:
            rows = export.write(reader, req, out, "csv", trace=queries.append)
        return {"seconds": time.perf_counter() - t, "rows": rows, "query": queries[0]}
    if name.startswith("report"):
        from gateway.report import data, drawing, render

        sampler = _TreeMemory()
        sampler.start()
        reader = open_reader(_cfg(url, YEAR_DB))
        lo = start if name == "report-all" else last_day
        t = time.perf_counter()
        report = data.collect(reader, site="bench", start=lo, end=end, generated=end, standards=["who-2021"])
        reader.close()
        collected, rss = time.perf_counter() - t, {"collect": _rss_mib()}
        # as the report command: the plots drawn in a child while the HTML is written, gone before
        # the PDF is laid out
        drawn = render.plots(report, apart=True)
        with tempfile.TemporaryDirectory() as tmp:
            html_mb = render.write_html(Path(tmp) / "r.html", report, drawn=drawn) / 2**20
            plotted, rss["html"] = time.perf_counter() - t, _rss_mib()
            pdf_mb = 0.0
            if not skip_pdf:
                render.pdf(report, Path(tmp) / "r.pdf", drawn)
                pdf_mb = (Path(tmp) / "r.pdf").stat().st_size / 2**20
        seconds = time.perf_counter() - t
        sampler.halt()
        own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return {
            "seconds": seconds,
            "collect_s": collected,
            "plots_html_s": plotted - collected,  # the HTML written, the plots drawn meanwhile
            "pdf_s": seconds - plotted,
            "cpu_s": own.ru_utime + own.ru_stime,
            "plot_cpu_s": kids.ru_utime + kids.ru_stime,
            "html_mb": html_mb,
            "pdf_mb": pdf_mb,
            "rss_mib": rss,
            "plot_child_mib": max(drawing.CHILD_PEAKS_MIB, default=0.0),
            "tree_mib": sampler.peak,
        }
    if name.startswith("web"):
        return _web(url, YEAR_DB if name == "web-year" else DAY_DB, start, end, name == "web-year")
    raise SystemExit(f"unknown child {name}")


def _web(url: str, db: str, start: datetime, end: datetime, whole: bool) -> dict[str, Any]:
    """The node page and the series API over HTTP, 20 requests each, after one to warm up."""
    from gateway.config import WebConfig
    from gateway.devservices import free_port
    from gateway.stores.influx_read import InfluxReader
    from gateway.stores.influx_v1 import InfluxV1
    from gateway.web.app import create_app
    from gateway.web.server import BackgroundServer

    web = WebConfig(port=free_port())
    store = InfluxV1(_cfg(url, db))
    server = BackgroundServer(create_app(web, InfluxReader(store), clock=lambda: end), web)
    server.start()
    base = f"http://127.0.0.1:{web.port}"
    lo = start if whole else end - DAY
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    paths = {
        "page": "/node/bench/node-00",
        "series": f"/api/v1/nodes/bench/node-00/series?start={lo.strftime(stamp)}&end={end.strftime(stamp)}",
    }
    out: dict[str, Any] = {}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(base + "/api/v1/openapi.json", timeout=30).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        for key, path in paths.items():
            urllib.request.urlopen(base + path, timeout=60).read()
            times = []
            for _ in range(20):
                t = time.perf_counter()
                with urllib.request.urlopen(base + path, timeout=60) as resp:
                    body = resp.read()
                times.append(time.perf_counter() - t)
            times.sort()
            out[key] = {"median": statistics.median(times), "p95": times[18], "bytes": len(body)}
            if key == "series":
                out[key]["buckets"] = len(json.loads(body)["times"])
    finally:
        server.stop()
        store.close()
    return out


def hwm_mib(pid: int | str = "self") -> float:
    """A process's peak resident memory since its exec (VmHWM). Not wait4's ru_maxrss: Linux
    carries the parent's peak into a child across exec, so every child of a 66 MB bench read 66 MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


def _rss_mib(pid: int | str = "self") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _descendants(pid: int | str = "self") -> list[str]:
    out: list[str] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                out += [child, *_descendants(child)]
    except OSError:  # gone meanwhile
        pass
    return out


def _forked_copy(pid: str) -> bool:
    """A child not yet through its exec (ctypes' `find_library` runs `ldconfig` and `gcc` as
    WeasyPrint loads Pango): it shows this process's own pages, shared, not memory of its own."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes() == Path("/proc/self/cmdline").read_bytes()
    except OSError:
        return True


class _TreeMemory(threading.Thread):
    """The resident memory of this process and its children added up, every 10 ms: a report that
    draws its plots in a child process is honest only as the sum at each moment. A forked child
    before its exec is left out (counted, it doubled this process: 211 MB for a 176 MB report)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.peak = 0.0
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.01):
            total = _rss_mib()
            for pid in _descendants():
                with contextlib.suppress(OSError):  # it exited meanwhile
                    total += 0.0 if _forked_copy(pid) else _rss_mib(pid)
            self.peak = max(self.peak, total)

    def halt(self) -> None:
        self._done.set()
        self.join()


def run_child(args: list[str]) -> tuple[dict[str, Any], float]:
    """Run a measurement, return its JSON and its peak resident memory in MiB (its own VmHWM)."""
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, cwd=ROOT)
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise SystemExit(f"{args[-1]} failed ({proc.returncode})")
    doc = json.loads(out)
    return doc, float(doc.pop("peak_mib"))


def cli_csv(port: int, queries: list[str]) -> tuple[float, float]:
    """The database's own CSV dump: seconds for all `queries` and the largest peak memory of the CLI
    (wait4's, which is at least the bench's own: the CLI's is far above it)."""
    seconds, peak = 0.0, 0.0
    for query in queries:
        t = time.perf_counter()
        with open(os.devnull, "wb") as out:
            proc = subprocess.Popen(
                [
                    *("influx", "-host", "127.0.0.1", "-port", str(port), "-database", YEAR_DB),
                    *("-format", "csv", "-precision", "rfc3339", "-execute", query),
                ],
                stdout=out,
            )
            _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit("influx -execute failed")
        seconds += time.perf_counter() - t
        peak = max(peak, usage.ru_maxrss / 1024)
    return seconds, peak


def gateway_start(work: Path, influx_port: int, broker_port: int, db: str) -> tuple[float, float]:
    """`minewatch-gateway run` until READY=1 (its loop's first tick, after the alert windows are
    refilled), then stopped: seconds to ready and peak memory (MiB)."""
    data = work / f"gw-{db}"
    data.mkdir()
    cfg = work / f"gateway-{db}.toml"
    cfg.write_text(
        f'data_dir = "{data}"\ntopic_prefix = "bench{db}"\n'
        f'[mqtt]\nport = {broker_port}\nclient_id = "bench-{db}"\n'
        f'[influxdb]\nurl = "http://127.0.0.1:{influx_port}"\ndatabase = "{db}"\napi = "v1"\n'
        '[alerts]\npresets = ["who-2021"]\n'
    )
    sock_path = str(work / f"notify-{db}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(120)
    env = {**os.environ, "NOTIFY_SOCKET": sock_path, "PYTHONUNBUFFERED": "1"}
    t = time.perf_counter()
    with (work / f"gateway-{db}.log").open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run", "--config", str(cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=env,
        )
        try:
            while sock.recv(100) != b"READY=1":
                pass
            ready = time.perf_counter() - t
            peak = hwm_mib(proc.pid)
        finally:
            proc.terminate()
            proc.wait(60)
            sock.close()
    return ready, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=50)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--skip-pdf", action="store_true")
    parser.add_argument("--cli-nodes", type=int, help="run the influx CLI on the first N nodes only")
    parser.add_argument(
        "--data", type=Path, help="keep the loaded influxd here; a later run with the same DIR reuses it"
    )
    parser.add_argument(
        "--only", help="comma-separated: export,cli,report,web,start (default: all)", default=""
    )
    parser.add_argument("--child")
    parser.add_argument("--url")
    parser.add_argument("--end")
    args = parser.parse_args()
    if args.child:
        end = datetime.fromisoformat(args.end)
        start = end - timedelta(days=args.days)
        measured = child(args.child, args.url, start, end, args.skip_pdf)
        print(json.dumps({**measured, "peak_mib": hwm_mib()}))
        return
    from gateway import devservices

    only = set(args.only.split(",")) if args.only else {"export", "cli", "report", "web", "start"}
    with tempfile.TemporaryDirectory(prefix="minewatch-year-") as tmp:
        work = Path(tmp)
        store_dir = args.data or work / "influxd"
        loaded = store_dir / "loaded.json"
        influxd = devservices.influxd(store_dir, port=devservices.free_port())
        broker = devservices.mosquitto(work / "mqtt")
        influxd.start()
        broker.start()
        try:
            url = f"http://127.0.0.1:{influxd.port}"
            doc = json.loads(loaded.read_text()) if loaded.exists() else None
            if doc is not None:  # a set loaded by an earlier run: its end is the period's end
                if (doc["nodes"], doc["days"]) != (args.nodes, args.days):
                    raise SystemExit(f"{store_dir} holds {doc['nodes']} nodes x {doc['days']} days")
                end, written = datetime.fromisoformat(doc["end"]), int(doc["written"])
                start = end - timedelta(days=args.days)
                print(f"reusing {written} readings in {store_dir} (loaded {doc['end']})", flush=True)
            if doc is not None and not doc.get("rolled"):
                t = time.perf_counter()
                points = rebuild(url, start, end)
                print(
                    f"rollup --rebuild: {points} roll-up points in {time.perf_counter() - t:.0f} s",
                    flush=True,
                )
                loaded.write_text(json.dumps({**doc, "rolled": True}))
            if doc is None:
                end = _end()
                start = end - timedelta(days=args.days)
                t = time.perf_counter()
                written = fill(url, YEAR_DB, args.nodes, start, end)
                fill_s = time.perf_counter() - t
                print(
                    f"{written} readings ({args.nodes} nodes x {args.days} days) written in {fill_s:.0f} s "
                    f"({written / fill_s:,.0f}/s)",
                    flush=True,
                )
                fill(url, DAY_DB, args.nodes, end - DAY, end)
                doc = {"nodes": args.nodes, "days": args.days, "end": end.isoformat(), "written": written}
                loaded.write_text(json.dumps(doc))
                t = time.perf_counter()
                points = rebuild(url, start, end)
                print(
                    f"rollup --rebuild: {points} roll-up points in {time.perf_counter() - t:.0f} s",
                    flush=True,
                )
                loaded.write_text(json.dumps({**doc, "rolled": True}))
            base = [
                sys.executable,
                __file__,
                "--url",
                url,
                "--days",
                str(args.days),
                "--end",
                end.isoformat(),
            ]
            base += ["--skip-pdf"] if args.skip_pdf else []
            results: dict[str, tuple[dict[str, Any], float]] = {}
            names = ["export"] if only & {"export", "cli"} else []
            names += ["report-all", "report-day"] if "report" in only else []
            names += ["web-year", "web-day"] if "web" in only else []
            for name in names:
                results[name] = run_child([*base, "--child", name])
                print(f"{name}: {results[name]}", flush=True)
            cli = None
            if "cli" in only:
                query = results["export"][0]["query"]
                nodes = [f"node-{n:02d}" for n in range(args.nodes)][: args.cli_nodes]
                per_node = [
                    query.replace(' WHERE "site"', f' WHERE "node" = \'{n}\' AND "site"', 1) for n in nodes
                ]
                cli_s, cli_mb = cli_csv(influxd.port, per_node)
                cli = (cli_s, cli_mb, len(nodes))
                print(f"influx CLI: {cli}", flush=True)
            starts = {}
            if "start" in only:
                starts = {db: gateway_start(work, influxd.port, broker.port, db) for db in (YEAR_DB, DAY_DB)}
                print(f"start: {starts}", flush=True)
            report(args, results, cli, starts, written)
        finally:
            broker.stop()
            influxd.stop()


def report(
    args: argparse.Namespace,
    results: dict[str, tuple[dict[str, Any], float]],
    cli: tuple[float, float, int] | None,
    starts: dict[str, tuple[float, float]],
    written: int,
) -> None:
    print(
        f"\n| what | {args.nodes} nodes, {args.days} days | reference in the same run | ratio "
        "| peak RSS (MiB) |"
    )
    print("| --- | --- | --- | --- | --- |")
    if "export" in results:
        exp, exp_mb = results["export"]
        rows = exp["rows"]
        exp_rate = rows / exp["seconds"]
        ref, ratio, cli_mem = "—", "—", ""
        if cli is not None:
            cli_s, cli_mb, cli_nodes = cli
            cli_rate = rows * cli_nodes / args.nodes / cli_s  # the nodes have the same readings
            ref = (
                f"`influx -format csv`, same query node by node ({cli_nodes} nodes): "
                f"{cli_rate:,.0f} rows/s ({cli_s:.0f} s)"
            )
            ratio, cli_mem = f"{exp_rate / cli_rate:.2f}x", f" (CLI {cli_mb:.0f} per node)"
        print(
            f"| export CSV, {rows:,} rows | {exp_rate:,.0f} rows/s ({exp['seconds']:.0f} s) | {ref} | "
            f"{ratio} | {exp_mb:.0f}{cli_mem} |"
        )
    if "report-all" in results:
        (ra, ra_mb), (rd, rd_mb) = results["report-all"], results["report-day"]
        # the peak of the process and its plot-drawing child added up (sampled), or more
        ra_mb, rd_mb = max(ra_mb, ra["tree_mib"]), max(rd_mb, rd["tree_mib"])
        what = "HTML" if args.skip_pdf else "HTML + PDF"
        print(
            f"| report {what} | {ra['seconds']:.1f} s (data {ra['collect_s']:.1f} s, "
            f"HTML and plots {ra['plots_html_s']:.1f} s, PDF {ra['pdf_s']:.1f} s; "
            f"{ra['html_mb']:.1f} MB HTML, {ra['pdf_mb']:.1f} MB PDF) | one day: {rd['seconds']:.1f} s | "
            f"{ra['seconds'] / rd['seconds']:.1f}x | {ra_mb:.0f} / {rd_mb:.0f} |"
        )
    if "web-year" in results:
        (wy, wy_mb), (wd, wd_mb) = results["web-year"], results["web-day"]
        for key, label in (("page", "node page"), ("series", "/api/v1 series")):
            y, d = wy[key], wd[key]
            extra = f" ({y['buckets']} buckets)" if key == "series" else ""
            ref = "a day stored" if key == "page" else f"one day ({d['buckets']} buckets)"
            print(
                f"| {label}, a year{extra} | median {y['median'] * 1000:.0f} ms, "
                f"p95 {y['p95'] * 1000:.0f} ms | "
                f"{ref}: median {d['median'] * 1000:.0f} ms, p95 {d['p95'] * 1000:.0f} ms | "
                f"{y['median'] / d['median']:.1f}x | {wy_mb:.0f} / {wd_mb:.0f} |"
            )
    if starts:
        (sy, sy_mb), (sd, sd_mb) = starts[YEAR_DB], starts[DAY_DB]
        print(
            f"| gateway start to READY=1, a year stored ({written:,} readings) | {sy:.1f} s | a day stored: "
            f"{sd:.1f} s | {sy / sd:.2f}x | {sy_mb:.0f} / {sd_mb:.0f} |"
        )


if __name__ == "__main__":
    main()
