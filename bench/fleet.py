"""A fleet on one gateway: start time, memory and every dashboard route as nodes and history grow,
side by side in one run, each as a ratio to the first case (20 nodes, a day).

    .venv/bin/python bench/fleet.py [--nodes 20,200,1000] [--spans day,month,year] [--rounds 11]

One private influxd and one private Mosquitto; per case a database of its own, filled with line
protocol over HTTP in batches of 50,000 lines, then `minewatch-gateway run` with `[web]` and every
alert preset (WHO 2021, US EPA, MNS 4585:2016), as a hub would run it. Measured per case:

  start   from starting the process until the dashboard answers (the web server starts after the
          alert engine has started, gateway/commands/run.py). The first start has no saved windows:
          it reads a day of readings from InfluxDB on a thread while it runs, and
  filled  is when that is done (its log line): the rules on windows judge what came meanwhile
          then, so this is how late their first alerts can be;
  restart the same after a clean stop (the windows saved at the stop), and
  killed  after a SIGKILL, once the windows saved at that start are on disk (the periodic save;
          gateway/alerts/snapshot.py): what a crash or a power cut costs
  RSS     resident memory once started and after the requests (VmRSS), and the peak (VmHWM)
  routes  median and p95 of `--rounds` requests to each route, after one to warm up, once the
          first start's windows are saved (writing 72 MB at 1,000 nodes slowed the first route,
          the overview, by up to 2.5x); the API's
          pages hold 100 nodes, so `latest limit=20` also asks for the 20-node case's page size
          (from offset 0: a full page in both); `alerts/active` is the API's list of active alerts
          (a page of 100), which the overview reads whole (its table of sites counts them)
  alerts  how many alerts were active then

The history, per node (what is loaded is honest about being sparse: a year of one-minute readings
for 1,000 nodes is 525 M rows, more than this machine loads in a bench run):

  day     one reading a minute for the last 25 hours (what the alert windows reload, the day chart)
  month   that, plus one reading an hour for the 29 days before
  year    that, plus one reading every 6 hours for the 364 days before: 52 weekly shards, so a
          query without a lower time bound reads a year of shards, as on a real hub; what it does
          not reproduce is the size of each old shard
  In month and year, one node in a hundred has been silent for 20 (month) or 90 (year) days: it
  must still be listed, with its last reading.

The machine is shared with other work: read the ratios, not the absolute numbers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gateway import devservices  # noqa: E402  (after the path fix, so a checkout runs as is)

SITES = ("north", "pit", "river", "town", "camp")
BATCH = 50_000
MINUTE_MS = 60_000
SPANS = {"day": None, "month": (29, 3600), "year": (364, 6 * 3600)}  # (days before, step s)
SILENT_DAYS = {"day": 0, "month": 20, "year": 90}
FILLED = b"alerts: windows filled"  # the log line of a first start whose windows are full


def _node(i: int) -> tuple[str, str]:
    return SITES[i % len(SITES)], f"n{i:04d}"


def _line(site: str, node: str, seq: int, ts_ms: int, step_s: int) -> str:
    pm = 8.0 + (seq * 7 + ts_ms // MINUTE_MS) % 40
    return (
        f"reading,site={site},node={node} seq={seq}i,period_s={step_s}i,pm2_5={pm},pm2_5_raw={pm * 1.1:.1f},"
        f'pm2_5_n={step_s}i,pm10={pm * 1.6:.1f},pm10_n={step_s}i,flags="",signed=false {ts_ms}'
    )


def _lines(nodes: int, span: str, now_ms: int) -> list[str]:
    """Every node's readings, oldest first; one node in a hundred silent for SILENT_DAYS."""
    out: list[str] = []
    day_start = now_ms - 25 * 3600 * 1000
    for i in range(nodes):
        site, node = _node(i)
        seq = 1
        silent = SILENT_DAYS[span] and i % 100 == 7
        sparse = SPANS[span]
        if sparse:
            days, step_s = sparse
            ts = day_start - days * 86_400_000
            stop = now_ms - SILENT_DAYS[span] * 86_400_000 if silent else day_start
            while ts < stop:
                out.append(_line(site, node, seq, ts, step_s))
                ts, seq = ts + step_s * 1000, seq + 1
        if silent:
            continue
        ts = day_start
        while ts <= now_ms:
            out.append(_line(site, node, seq, ts, 60))
            ts, seq = ts + MINUTE_MS, seq + 1
    return out


def _post(url: str, body: bytes) -> None:
    req = urllib.request.Request(url, data=body)
    with urllib.request.urlopen(req, timeout=300) as resp:
        if resp.status not in (200, 204):
            raise RuntimeError(f"{url}: {resp.status}")


def _load(influx: str, db: str, lines: list[str]) -> None:
    _post(f"{influx}/query", urllib.parse.urlencode({"q": f'CREATE DATABASE "{db}"'}).encode())
    write = f"{influx}/write?{urllib.parse.urlencode({'db': db, 'precision': 'ms'})}"
    for i in range(0, len(lines), BATCH):
        _post(write, "\n".join(lines[i : i + BATCH]).encode())


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks


def _settle(pid: int, limit_s: float = 180.0) -> float:
    """Wait until influxd has been idle for a second (under 5 % of a core), at most `limit_s`:
    right after a load it compacts the new shards (a year is 52 of them) on both cores for a
    minute or more, which a hub whose year was written over a year has long done. Without this
    the year cases' routes measured influxd's compaction beside the gateway."""
    hz = os.sysconf("SC_CLK_TCK")
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit_s:
        before = _cpu_ticks(pid)
        time.sleep(1.0)
        if (_cpu_ticks(pid) - before) / hz < 0.05:
            break
    return time.monotonic() - t0


def _proc_kb(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return 0.0


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as resp:
        data: bytes = resp.read()
    return data


@dataclass
class Result:
    case: str
    rows: int
    load_s: float
    start_s: float = 0.0
    filled_s: float = 0.0
    restart_s: float = 0.0
    killed_s: float = 0.0
    windows_mb: float = 0.0
    restart_rss_mb: float = 0.0
    rss_mb: float = 0.0
    rss_after_mb: float = 0.0
    peak_mb: float = 0.0
    overview_kb: float = 0.0
    settle_s: float = 0.0  # influxd's compaction after the load, waited for (not timed)
    active: int = 0  # active alerts when the routes were asked (the overview reads them all)
    routes: dict[str, tuple[float, float]] = field(default_factory=dict)  # median, p95 ms


def _routes(nodes: int) -> dict[str, str]:
    site, node = _node(1)
    return {
        "/": "/",
        "/node/…": f"/node/{site}/{node}",
        "/download": "/download",
        "/api/v1/nodes": "/api/v1/nodes",
        "/api/v1/latest": "/api/v1/latest",
        "latest limit=20": "/api/v1/latest?limit=20",  # the first case's page size, a full page in both
        "series 24h": f"/api/v1/nodes/{site}/{node}/series",
        "/alerts": "/alerts",
        "alerts/active": "/api/v1/alerts/active",
    }


def _run_case(
    work: Path, broker: int, influx: str, nodes: int, span: str, rounds: int, influxd_pid: int
) -> Result:
    db = f"fleet_{nodes}_{span}_{rounds}"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    lines = _lines(nodes, span, int(now.timestamp() * 1000))
    t0 = time.monotonic()
    _load(influx, db, lines)
    result = Result(f"{nodes} × {span}", len(lines), time.monotonic() - t0)
    del lines
    result.settle_s = _settle(influxd_pid)
    port = devservices.free_port()
    cfg = work / f"{db}.toml"
    cfg.write_text(
        f'data_dir = "{work / db}"\ntopic_prefix = "fleet"\n'
        f'[mqtt]\nport = {broker}\nclient_id = "bench-{db}"\n'
        f'[influxdb]\nurl = "{influx}"\napi = "v1"\ndatabase = "{db}"\n'
        f"[web]\nport = {port}\n"
        '[alerts]\npresets = ["who-2021", "us-epa", "mns-4585-2016"]\n'
    )
    base = f"http://127.0.0.1:{port}"
    log = (work / f"{db}.log").open("wb")
    offset = (work / f"{db}.log").stat().st_size
    t0, first = time.monotonic(), time.time()
    proc, result.start_s = _start(cfg, base, log, work / f"{db}.log")
    try:
        result.filled_s = _filled(work / f"{db}.log", offset, t0)
        # the windows are saved once filled (72 MB at 1,000 nodes, written and synced): the
        # requests come after, or the first route's figures would be the save's
        _wait_saved(work / db, first)
        time.sleep(1.0)  # let the first ticks run
        result.rss_mb = _proc_kb(proc.pid, "VmRSS") / 1024
        result.overview_kb = len(_get(base + "/")) / 1000
        with urllib.request.urlopen(base + "/api/v1/alerts/active", timeout=120) as resp:
            result.active = int(resp.headers["X-Total-Count"])  # a page of them, the count of all
        for name, path in _routes(nodes).items():
            _get(base + path)  # warm up
            samples = []
            for _ in range(rounds):
                t = time.perf_counter()
                _get(base + path)
                samples.append((time.perf_counter() - t) * 1000)
            samples.sort()
            p95 = samples[min(len(samples) - 1, round(0.95 * (len(samples) - 1)))]
            result.routes[name] = (statistics.median(samples), p95)
        result.rss_after_mb = _proc_kb(proc.pid, "VmRSS") / 1024
        result.peak_mb = _proc_kb(proc.pid, "VmHWM") / 1024
        _stop(proc)
        # a restart after a clean stop: the windows come from the file that stop wrote
        started = time.time()
        proc, result.restart_s = _start(cfg, base, log, work / f"{db}.log")
        time.sleep(1.0)
        result.restart_rss_mb = _proc_kb(proc.pid, "VmRSS") / 1024
        # killed once the save at that start is on disk: the next start uses it and its late log
        result.windows_mb = _wait_saved(work / db, started) / 1e6
        _kill(proc)
        proc, result.killed_s = _start(cfg, base, log, work / f"{db}.log")
    finally:
        _stop(proc)
        log.close()
        _post(f"{influx}/query", urllib.parse.urlencode({"q": f'DROP DATABASE "{db}"'}).encode())
    return result


def _filled(log_path: Path, offset: int, t0: float) -> float:
    """Seconds from `t0` until the first start's windows are full (gateway/alerts/history.py: the
    gateway runs meanwhile, and the rules on windows judge what came once they are)."""
    while time.monotonic() - t0 < 600:
        with log_path.open("rb") as f:
            f.seek(offset)
            if FILLED in f.read():
                return time.monotonic() - t0
        time.sleep(0.05)
    raise RuntimeError(f"the windows were not filled; see {log_path}")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the gateway and its dashboard child at once, as systemd kills a unit's processes
    (an orphaned dashboard would go on answering, and the next start would seem instant)."""
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    proc.send_signal(signal.SIGKILL)
    for pid in children:
        with contextlib.suppress(ProcessLookupError):
            os.kill(int(pid), signal.SIGKILL)
    proc.wait()
    for pid in children:
        while Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text():
            time.sleep(0.05)


def _wait_saved(data_dir: Path, since: float) -> int:
    """Wait until the windows saved at the start after `since` are on disk; their size."""
    windows = data_dir / "alert-windows.bin"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if windows.exists() and windows.stat().st_mtime >= since and len(list(data_dir.glob("*.late"))) == 1:
            return windows.stat().st_size
        time.sleep(0.1)
    raise RuntimeError(f"no windows saved in {data_dir}")


def _start(cfg: Path, base: str, log: BinaryIO, log_path: Path) -> tuple[subprocess.Popen[bytes], float]:
    """`minewatch-gateway run` and the seconds until its dashboard answers."""
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", "run", "--config", str(cfg)],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=ROOT,
    )
    while True:
        try:
            _get(base + "/api/v1/openapi.json")
            return proc, time.monotonic() - t0
        except (OSError, urllib.error.URLError):
            if proc.poll() is not None or time.monotonic() - t0 > 600:
                _stop(proc)
                raise RuntimeError(f"the gateway did not start; see {log_path}") from None
            time.sleep(0.05)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(120)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _print(results: list[Result]) -> None:
    first = results[0]

    def ratio(x: float, base: float) -> str:
        return f"{x / base:.2f}" if base else "-"

    print(
        f"\n{'case':<13} {'rows':>9} {'load s':>7} {'start s':>8} {'x':>5} {'filled':>7} {'x':>5} "
        f"{'restart':>8} {'x':>5} "
        f"{'killed':>7} {'x':>5} {'RSS MB':>7} {'x':>5} {'after':>6} {'peak':>6} {'restart':>7} "
        f"{'/ KB':>6} {'file MB':>7} {'alerts':>6}"
    )
    for r in results:
        print(
            f"{r.case:<13} {r.rows:>9} {r.load_s:>7.1f} {r.start_s:>8.2f} "
            f"{ratio(r.start_s, first.start_s):>5} {r.filled_s:>7.2f} {ratio(r.filled_s, first.start_s):>5} "
            f"{r.restart_s:>8.2f} "
            f"{ratio(r.restart_s, first.start_s):>5} "
            f"{r.killed_s:>7.2f} {ratio(r.killed_s, first.start_s):>5} "
            f"{r.rss_mb:>7.1f} {ratio(r.rss_mb, first.rss_mb):>5} {r.rss_after_mb:>6.1f} "
            f"{r.peak_mb:>6.1f} {r.restart_rss_mb:>7.1f} {r.overview_kb:>6.1f} {r.windows_mb:>7.1f} "
            f"{r.active:>6}"
        )
    for col, title in ((0, "median"), (1, "p95")):
        names = list(first.routes)
        print(f"\nroute {title} ms (x the first case)")
        print(f"{'case':<13} " + " ".join(f"{n[:14]:>16}" for n in names))
        for r in results:
            cells = []
            for n in names:
                v, b = r.routes[n][col], first.routes[n][col]
                cells.append(f"{v:>8.1f} ({ratio(v, b):>5})")
            print(f"{r.case:<13} " + " ".join(f"{c:>16}" for c in cells))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nodes", default="20,200,1000", help="comma-separated fleet sizes")
    parser.add_argument("--spans", default="day,month,year", help="comma-separated: day, month, year")
    parser.add_argument("--rounds", type=int, default=11, help="requests per route and case")
    args = parser.parse_args()
    sizes = [int(n) for n in args.nodes.split(",")]
    spans = [s for s in args.spans.split(",") if s]
    for s in spans:
        if s not in SPANS:
            parser.error(f"--spans: {s!r} is not one of {', '.join(SPANS)}")
    started = datetime.now(UTC)
    results: list[Result] = []
    with tempfile.TemporaryDirectory(prefix="minewatch-fleet-") as tmp:
        work = Path(tmp)
        broker = devservices.mosquitto(work / "mosquitto")
        influxd = devservices.influxd(work / "influxd")
        broker.start()
        influxd.start()
        influx = f"http://127.0.0.1:{influxd.port}"
        try:
            # once, not counted: the first start reads Python and influxd from a cold disk cache
            # (3.5 s against 1.3 s for the same case next), which would skew every ratio
            assert influxd.proc is not None
            pid = influxd.proc.pid
            _run_case(work, broker.port, influx, sizes[0], spans[0], 1, pid)
            for nodes in sizes:
                for span in spans:
                    r = _run_case(work, broker.port, influx, nodes, span, args.rounds, pid)
                    print(
                        f"{r.case}: {r.rows} rows loaded in {r.load_s:.1f} s (influxd settled in "
                        f"{r.settle_s:.0f} s), started in {r.start_s:.2f} s, "
                        f"{r.rss_mb:.0f} MB",
                        flush=True,
                    )
                    results.append(r)
        finally:
            influxd.stop()
            broker.stop()
    print(f"\nstarted {started:%Y-%m-%d %H:%M} UTC, pid {os.getpid()}, {os.cpu_count()} cores (shared)")
    _print(results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
