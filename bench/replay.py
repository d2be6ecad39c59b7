"""Backlog replay: a node whose outbox holds N readings (a long outage) drains it through the real
Mosquitto and the real gateway into a real influxd. Prints readings per second, the time until the
node's outbox is empty and until InfluxDB holds every reading, each as a ratio to the 20 s goal, and
the CPU each process used, side by side for each in-flight window asked for.

    .venv/bin/python -m bench.replay [--readings 100000] [--inflight 100,1000]

Everything runs on this machine, with the shipped defaults except `max_inflight`; the readings are
the node's own payloads (PM1.0, PM2.5, PM10, one-minute windows, as a PMS5003 kit sends them).
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bench.ingest import _count, _query
from contract.metrics import Metric
from contract.wire import format_ts
from gateway import devservices
from node.config import load
from node.outbox import Outbox
from node.sampler import MetricReading, Reading
from node.service import to_payload

GOAL_S = 20.0
ROOT = Path(__file__).resolve().parent.parent


def _depth(path: Path) -> int:
    db = sqlite3.connect(path, timeout=30)
    try:
        (n,) = db.execute("SELECT COUNT(*) FROM outbox").fetchone()
        return int(n)
    finally:
        db.close()


def _cpu_s(pid: int) -> float:
    """utime + stime of a live process, from /proc (children not included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", *args], stdout=handle, stderr=subprocess.STDOUT, cwd=ROOT, env=os.environ
    )


def _fill(cfg_path: Path, count: int) -> float:
    cfg = load(cfg_path)
    start = time.perf_counter()
    box = Outbox(cfg.buffer.path, durable=False, max_readings=cfg.buffer.max_readings)
    first = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(count):
        v = 10.0 + (i % 37) / 10
        metrics = {
            Metric.PM1_0: MetricReading(value=round(v * 0.7, 1), raw=round(v * 0.7, 1), n=60),
            Metric.PM2_5: MetricReading(value=v, raw=v, n=60),
            Metric.PM10: MetricReading(value=round(v * 1.6, 1), raw=round(v * 1.6, 1), n=60),
        }
        reading = Reading(ts=first + timedelta(minutes=i), period_s=60, metrics=metrics, flags=frozenset())
        box.append(format_ts(reading.ts), lambda seq, r=reading: to_payload(cfg, seq, r).to_wire())  # type: ignore[misc]
    box.close()
    return time.perf_counter() - start


def run_once(tmp: Path, count: int, inflight: int, mosquitto_port: int, influx_port: int) -> dict[str, float]:
    db = f"bench_{inflight}"
    _query(f"http://127.0.0.1:{influx_port}", db, f'CREATE DATABASE "{db}"')
    work = tmp / f"w{inflight}"
    work.mkdir()
    prefix = f"bench{inflight}"
    gw = work / "gateway.toml"
    gw.write_text(
        f'data_dir = "{work / "gw"}"\ntopic_prefix = "{prefix}"\n'
        f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto_port}\nclient_id = "gw-{prefix}"\n'
        f'[influxdb]\nurl = "http://127.0.0.1:{influx_port}"\napi = "v1"\ndatabase = "{db}"\n'
    )
    node = work / "node.toml"
    node.write_text(
        f'site = "bench"\nnode = "replay"\ninterval_s = 60\ntopic_prefix = "{prefix}"\n'
        f'clock_sync = "rtc"\n[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto_port}\n'
        f"max_inflight = {inflight}\n"
        f'[buffer]\npath = "{work / "outbox.sqlite"}"\n[[sensors]]\ntype = "simulated-pm"\n'
    )
    fill_s = _fill(node, count)
    gateway = _spawn(["gateway.cli", "run", "--config", str(gw)], work / "gateway.log")
    time.sleep(2.0)  # let the gateway subscribe before the node starts sending
    t0 = time.monotonic()
    proc = _spawn(["node.cli", "run", "--config", str(node)], work / "node.log")
    outbox = work / "outbox.sqlite"
    empty_s = stored_s = None
    try:
        while time.monotonic() - t0 < 600:
            if empty_s is None and _depth(outbox) == 0:
                empty_s = time.monotonic() - t0
                node_cpu = _cpu_s(proc.pid)
            if empty_s is not None and _count(f"http://127.0.0.1:{influx_port}", db) >= count:
                stored_s = time.monotonic() - t0
                break
            time.sleep(0.1)
        gateway_cpu = _cpu_s(gateway.pid)
    finally:
        for p in (proc, gateway):
            p.send_signal(signal.SIGTERM)
            p.wait(30)
    if empty_s is None or stored_s is None:
        raise SystemExit(f"replay did not finish; see {work}")
    return {
        "fill_s": fill_s,
        "empty_s": empty_s,
        "stored_s": stored_s,
        "node_cpu_s": node_cpu,
        "gateway_cpu_s": gateway_cpu,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--readings", type=int, default=100_000)
    parser.add_argument("--inflight", default="100", help="comma-separated max_inflight values to compare")
    args = parser.parse_args()
    windows = [int(x) for x in args.inflight.split(",")]
    with tempfile.TemporaryDirectory(prefix="minewatch-bench-") as name:
        tmp = Path(name)
        mosquitto = devservices.mosquitto(tmp / "mosquitto")
        influxd = devservices.influxd(tmp / "influxd")
        mosquitto.start()
        influxd.start()
        try:
            results = {w: run_once(tmp, args.readings, w, mosquitto.port, influxd.port) for w in windows}
        finally:
            mosquitto.stop()
            influxd.stop()
    n = args.readings
    print(f"replay of {n} readings, {os.cpu_count()} CPUs; goal: outbox empty in < {GOAL_S:.0f} s")
    print(
        f"{'max_inflight':>12} {'empty s':>8} {'/goal':>6} {'readings/s':>10} {'in DB s':>8} {'/goal':>6}"
        f" {'node CPU s':>10} {'gw CPU s':>9}"
    )
    for w, r in results.items():
        print(
            f"{w:>12} {r['empty_s']:>8.1f} {r['empty_s'] / GOAL_S:>6.2f} {n / r['empty_s']:>10.0f}"
            f" {r['stored_s']:>8.1f} {r['stored_s'] / GOAL_S:>6.2f} {r['node_cpu_s']:>10.1f}"
            f" {r['gateway_cpu_s']:>9.1f}"
        )
    fill = next(iter(results.values()))["fill_s"]
    print(f"(filling the outbox, not timed above: {fill:.1f} s; times count from the node's process start)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
