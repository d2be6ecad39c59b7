"""Alert latency: from a reading's publish to its alert on the MQTT alert topic, p50 and p99, with
no background load and with N readings/s of background load (default 1,000), side by side in one run.

Everything is real: a private Mosquitto and influxd, the gateway as its own process
(`minewatch-gateway run`), publishers and a listener speaking MQTT. A probe node alternates a reading
over the limit (raises) and one under it (clears, `clear_after = "0"`); the background nodes publish
readings under the limit, which the engine still evaluates. Bounded in count and time.

    .venv/bin/python bench/alert_latency.py --rate 1000 --probes 40 --max-delay 0.2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contract.wire import format_ts  # noqa: E402
from gateway import devservices  # noqa: E402

SITE = "bench"


def reading(node: str, seq: int, ts: datetime, value: float) -> bytes:
    doc = {
        "schema": 1,
        "site": SITE,
        "node": node,
        "seq": seq,
        "ts": format_ts(ts),
        "period_s": 1,
        "metrics": {"pm2_5": {"value": value, "n": 1}},
        "flags": [],
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def client(port: int, name: str) -> mqtt.Client:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{uuid.uuid4().hex[:6]}")
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


class Load(threading.Thread):
    """`rate` readings/s from 50 background nodes, each with its own seq and unique timestamps."""

    def __init__(self, port: int, prefix: str, rate: int) -> None:
        super().__init__(daemon=True)
        self.port, self.prefix, self.rate = port, prefix, rate
        self.stop = threading.Event()
        self.sent = 0
        self.elapsed = 0.0

    def run(self) -> None:
        if self.rate <= 0:
            return
        c = client(self.port, "load")
        nodes = [f"load-{i:02d}" for i in range(50)]
        seq = dict.fromkeys(nodes, 0)
        start = time.monotonic()
        base = datetime.now(UTC)
        while not self.stop.is_set():
            due = int((time.monotonic() - start) * self.rate)
            while self.sent < due:
                node = nodes[self.sent % len(nodes)]
                seq[node] += 1
                ts = base + timedelta(milliseconds=seq[node] * 10)
                c.publish(
                    f"{self.prefix}/v1/{SITE}/{node}/reading", reading(node, seq[node], ts, 20.0), qos=1
                )
                self.sent += 1
            time.sleep(0.005)
        self.elapsed = time.monotonic() - start
        c.disconnect()
        c.loop_stop()


def measure(
    port: int, prefix: str, probes: int, rate: int, timeout_s: float
) -> tuple[list[float], int, float]:
    arrivals: dict[str, float] = {}
    lock = threading.Lock()

    def on_message(c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        doc = json.loads(msg.payload)
        if doc.get("node") == "probe":
            with lock:
                arrivals.setdefault(doc["ts"], time.monotonic())

    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"listen-{uuid.uuid4().hex[:6]}")
    ready = threading.Event()
    listener.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{prefix}/v1/{SITE}/probe/alert", qos=1)
    listener.on_subscribe = lambda c, u, mid, rcs, p: ready.set()
    listener.on_message = on_message
    listener.connect("127.0.0.1", port)
    listener.loop_start()
    ready.wait(10)
    load = Load(port, prefix, rate)
    load.start()
    time.sleep(2.0)  # let the load settle
    pub = client(port, "probe")
    sent: dict[str, float] = {}
    seq0 = int(time.time() * 10)
    started = time.monotonic()
    for i in range(probes):
        ts = datetime.now(UTC)
        key = format_ts(ts)
        value = 500.0 if i % 2 == 0 else 5.0
        sent[key] = time.monotonic()
        pub.publish(f"{prefix}/v1/{SITE}/probe/reading", reading("probe", seq0 + i, ts, value), qos=1)
        deadline = time.monotonic() + timeout_s
        while key not in arrivals and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    load.stop.set()
    load.join(10)
    pub.disconnect()
    pub.loop_stop()
    listener.disconnect()
    listener.loop_stop()
    latencies = [arrivals[k] - t for k, t in sent.items() if k in arrivals]
    return latencies, load.sent, load.elapsed or elapsed


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rate", type=int, default=1000, help="background readings per second")
    parser.add_argument("--probes", type=int, default=40, help="probe readings per phase (half raise)")
    parser.add_argument("--max-delay", type=float, default=0.2, help="gateway [batch] max_delay_s")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for one alert")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="minewatch-bench-") as tmp:
        work = Path(tmp)
        broker, influxd = devservices.mosquitto(work / "mqtt"), devservices.influxd(work / "influxd")
        broker.start()
        influxd.start()
        prefix = f"b{uuid.uuid4().hex[:8]}"
        cfg = work / "gateway.toml"
        cfg.write_text(
            f'data_dir = "{work / "gw"}"\ntopic_prefix = "{prefix}"\n'
            f'[mqtt]\nport = {broker.port}\nclient_id = "bench-gw"\n'
            f'[influxdb]\nurl = "http://127.0.0.1:{influxd.port}"\ndatabase = "bench"\n'
            f"[batch]\nmax_delay_s = {args.max_delay}\n"
            '[[alerts.rules]]\nname = "probe"\ntype = "threshold"\nmetric = "pm2_5"\nlimit = 100.0\n'
            'clear_after = "0"\nremind_every = "0"\n'
        )
        log = (work / "gateway.log").open("ab")
        gw = subprocess.Popen(
            [sys.executable, "-m", "gateway.cli", "run", "--config", str(cfg)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            time.sleep(3.0)
            results = []
            for rate in (0, args.rate):
                lat, sent, elapsed = measure(broker.port, prefix, args.probes, rate, args.timeout)
                results.append((rate, lat, sent, elapsed))
        finally:
            gw.terminate()
            gw.wait(30)
            broker.stop()
            influxd.stop()
    print(
        f"alert latency, publish -> alert topic; [batch] max_delay_s = {args.max_delay}; {args.probes} probes"
    )
    print(f"{'background':>12} {'achieved':>10} {'alerts':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    p50s = []
    for rate, lat, sent, elapsed in results:
        achieved = sent / elapsed if elapsed else 0.0
        p50, p99 = pct(lat, 0.5) * 1000, pct(lat, 0.99) * 1000
        p50s.append(p50)
        print(
            f"{rate:>10}/s {achieved:>8.0f}/s {len(lat):>4}/{args.probes:<2} {p50:>8.0f} {p99:>8.0f} "
            f"{max(lat) * 1000 if lat else float('nan'):>8.0f}"
        )
    if len(p50s) == 2 and p50s[0]:
        print(f"p50 with load / without: {p50s[1] / p50s[0]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
