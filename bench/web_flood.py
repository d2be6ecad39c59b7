"""Ingest and alerts with and without a flood on the dashboard port, side by side in one run.

    .venv/bin/python -m bench.web_flood [--n 20000] [--idle 2000] [--slow 300] [--rounds 2]

A private Mosquitto and influxd, and `minewatch-gateway run` with `[web]` (its defaults:
max_connections 512, header_timeout_s 10, idle_timeout_s 30) and one threshold rule. Each round
measures, quiet and then under a flood of `--idle` idle and `--slow` slow-header connections on the
dashboard port (tests/flood.py, in a process of its own at nice `--flood-nice`, 19 by default, so that
on one machine the attacker's own CPU takes only what is left; a connection the server closes is
opened again a second later):

  stored/s   `--n` readings published at QoS 1 from 20 MQTT clients, from the first publish until
             InfluxDB counts them all;
  alert p99  from a probe reading's publish to its alert on the MQTT alert topic, with 200
             readings/s of background (bench/alert_latency.py's measure), `--probes` probes.

It also tries the dashboard once mid-phase (GET /api/v1/nodes, 5 s timeout) and prints the flood's
own counts, and the CPU seconds the gateway's process and the dashboard's spent in each phase.
Prints the flood/quiet ratios.
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
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.alert_latency import measure, pct  # noqa: E402
from bench.ingest import _cpu_s, _publish, _query  # noqa: E402
from gateway import devservices  # noqa: E402
from gateway.devservices import free_port  # noqa: E402

NODES = 20
DB = "bench"


def _payloads(prefix: str, site: str, n: int) -> list[tuple[str, bytes]]:
    """`n` readings of 20 nodes at one a second, ending now, on a site of the phase's own."""
    per_node = n // NODES
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=per_node + 1)
    out = []
    for seq in range(1, per_node + 1):
        ts = (start + timedelta(seconds=seq)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        for k in range(NODES):
            doc = {
                "schema": 1,
                "site": site,
                "node": f"node-{k:02d}",
                "seq": seq,
                "ts": ts,
                "period_s": 1,
                "metrics": {"pm2_5": {"value": 20.0, "n": 1}, "pm10": {"value": 30.0, "n": 1}},
                "flags": [],
            }
            out.append((f"{prefix}/v1/{site}/node-{k:02d}/reading", json.dumps(doc).encode()))
    return out


def _site_count(influx: str, site: str) -> int:
    doc = _query(influx, DB, f'SELECT count("seq") FROM "reading" WHERE "site" = \'{site}\'')
    try:
        return int(doc["results"][0]["series"][0]["values"][0][1])  # type: ignore[index]
    except (KeyError, IndexError):
        return 0


def _stored_per_s(port: int, influx: str, prefix: str, site: str, n: int) -> float:
    messages = _payloads(prefix, site, n)
    t0 = time.monotonic()
    _publish(port, messages, NODES)
    deadline = time.monotonic() + 120
    while _site_count(influx, site) < len(messages):
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {_site_count(influx, site)} of {len(messages)} stored")
        time.sleep(0.05)
    return len(messages) / (time.monotonic() - t0)


def _flood(port: int, idle: int, slow: int, nice: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.flood", str(port), str(idle), str(slow), str(nice)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _stop(flood: subprocess.Popen[str]) -> dict[str, int]:
    out, _ = flood.communicate("", timeout=60)
    counts: dict[str, int] = json.loads(out.strip().splitlines()[-1])
    return counts


def _children(pid: int) -> list[int]:
    """The dashboard process: the gateway's only child."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return found


def _dashboard_answers(port: int) -> str:
    t0 = time.monotonic()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/nodes", timeout=5) as resp:
            resp.read()
            return f"{resp.status} in {(time.monotonic() - t0) * 1000:.0f} ms"
    except OSError as exc:
        return f"no ({type(exc).__name__})"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=20_000, help="readings per throughput phase")
    parser.add_argument("--idle", type=int, default=2000)
    parser.add_argument("--slow", type=int, default=300)
    parser.add_argument("--probes", type=int, default=40, help="alert probes per phase (half raise)")
    parser.add_argument("--rounds", type=int, default=2, help="quiet then flood, this many times")
    parser.add_argument(
        "--flood-nice", type=int, default=19, help="niceness of the flood's own process (0: none)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="minewatch-bench-") as tmp:
        work = Path(tmp)
        broker, influxd = devservices.mosquitto(work / "mqtt"), devservices.influxd(work / "influxd")
        broker.start()
        influxd.start()
        influx = f"http://127.0.0.1:{influxd.port}"
        _query(influx, DB, f'CREATE DATABASE "{DB}"')
        prefix, web_port = f"b{uuid.uuid4().hex[:8]}", free_port()
        cfg = work / "gateway.toml"
        cfg.write_text(
            f'data_dir = "{work / "gw"}"\ntopic_prefix = "{prefix}"\n'
            f'[mqtt]\nport = {broker.port}\nclient_id = "bench-gw"\n'
            f'[influxdb]\nurl = "{influx}"\napi = "v1"\ndatabase = "{DB}"\n'
            '[[alerts.rules]]\nname = "probe"\ntype = "threshold"\nmetric = "pm2_5"\nlimit = 100.0\n'
            'clear_after = "0"\nremind_every = "0"\n'
            f"[web]\nport = {web_port}\n"
        )
        log_path = work / "gateway.log"
        gw = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run", "--config", str(cfg)],
            stdout=log_path.open("ab"),
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        rows: list[dict[str, object]] = []
        try:
            deadline = time.monotonic() + 60
            while "data in" not in log_path.read_text():
                if time.monotonic() > deadline or gw.poll() is not None:
                    raise RuntimeError(f"the gateway did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.1)
            _stored_per_s(broker.port, influx, prefix, "warmup", 2000)
            for r in range(args.rounds):
                for flooded in (False, True):
                    flood = _flood(web_port, args.idle, args.slow, args.flood_nice) if flooded else None
                    if flood is not None:
                        time.sleep(5.0)  # to its height: every connection tried, the cap reached
                    cpu0 = _cpu_s(gw.pid), sum(_cpu_s(c) for c in _children(gw.pid))
                    print(f"round {r}, {'flood' if flooded else 'quiet'}", file=sys.stderr, flush=True)
                    rate = _stored_per_s(
                        broker.port, influx, prefix, f"r{r}{'f' if flooded else 'q'}", args.n
                    )
                    answers = _dashboard_answers(web_port)
                    latencies, _, _ = measure(broker.port, prefix, args.probes, 200, 10.0)
                    cpu = _cpu_s(gw.pid) - cpu0[0], sum(_cpu_s(c) for c in _children(gw.pid)) - cpu0[1]
                    counts = _stop(flood) if flood is not None else {"held": 0, "opened": 0}
                    row: dict[str, object] = {
                        "phase": "flood" if flooded else "quiet",
                        "rate": rate,
                        "p50": pct(latencies, 0.5) * 1000,
                        "p99": pct(latencies, 0.99) * 1000,
                        "alerts": len(latencies),
                        "web": answers,
                        "held": counts["held"],
                        "opened": counts["opened"],
                        "cpu_gw": cpu[0],
                        "cpu_web": cpu[1],
                    }
                    rows.append(row)
                    time.sleep(2.0)
            alive = gw.poll() is None
        except BaseException:
            print(log_path.read_text()[-5000:], file=sys.stderr)
            raise
        finally:
            gw.terminate()
            gw.wait(30)
            broker.stop()
            influxd.stop()
        log_kb = log_path.stat().st_size / 1024
    print(
        f"web flood: {args.idle} idle + {args.slow} slow-header connections on the dashboard; "
        f"{args.n} readings per throughput phase; {args.probes} alert probes at 200 readings/s; "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'phase':>6} {'stored/s':>9} {'alerts':>7} {'p50 ms':>7} {'p99 ms':>7} {'gw CPU s':>8} "
        f"{'web CPU s':>9} {'flood held':>10} {'opened':>7}  dashboard mid-phase"
    )
    for row in rows:
        print(
            f"{row['phase']:>6} {row['rate']:>9.0f} {row['alerts']:>4}/{args.probes:<2} {row['p50']:>7.0f} "
            f"{row['p99']:>7.0f} {row['cpu_gw']:>8.1f} {row['cpu_web']:>9.1f} {row['held']:>10} "
            f"{row['opened']:>7}  {row['web']}"
        )

    def median(phase: str, key: str) -> float:
        return statistics.median(float(row[key]) for row in rows if row["phase"] == phase)  # type: ignore[arg-type]

    print(
        f"flood / quiet (medians): stored/s {median('flood', 'rate') / median('quiet', 'rate'):.2f}x, "
        f"alert p99 {median('flood', 'p99') / median('quiet', 'p99'):.2f}x, "
        f"alert p50 {median('flood', 'p50') / median('quiet', 'p50'):.2f}x"
    )
    print(f"gateway alive at the end: {alive}; its log: {log_kb:.0f} KiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
