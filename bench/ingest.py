"""Ingest benchmark: the gateway against a minimal MQTT -> InfluxDB pipe, side by side, in one run.

    .venv/bin/python bench/ingest.py [--n 100000] [--nodes 20] [--rounds 1] [--no-alerts] [--kit pms5003]
                                     [--signed] [--worker]

Starts a private Mosquitto (queue limits raised, as everywhere in this project) and a private influxd,
then for each consumer in turn: starts it as its own process, publishes N readings from `--nodes`
MQTT clients at QoS 1 (20 node ids, seq 1..N/nodes each), and measures from the first publish until
InfluxDB answers a count of N. Consumers:

  pipe     a bare paho subscriber (QoS 1, automatic acks) that json.loads each payload, formats line
           protocol with an f-string and POSTs batches of 1000 (or every 0.5 s) to /write: the
           practical limit on this machine.
  gateway  `minewatch-gateway run`: strict validation, dead-letter store, spool, seq dedup, manual
           acks after durable write, gateway status, and the alert engine with every preset's rules.
  signed   (with --signed) the same gateway as deployed: every reading signed with its node's
           Ed25519 key (contract/signing.py), each node's key in the registry, and
           `require_signatures = "always"`; the pipe, the limit, reads the unsigned readings as before.
  worker   (with --signed --worker) the same, with `[trust] check_signatures_in = "worker"`: the
           signatures are checked in a worker process (gateway/trust/checker.py).

Prints readings/s, the gateway/pipe ratio, each consumer's CPU time per reading (from /proc: the
consumer's process and its children, i.e. the signature worker) and its peak RSS (VmHWM; with a
worker, the sum of both processes' peaks), and whether every reading arrived.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402  (after the path fix, so a checkout runs as is)
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from gateway import devservices  # noqa: E402

PREFIX = "bench"
CLK_TCK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- the minimal pipe (its own process)
def pipe_main(port: int, influx: str, db: str, ready: Path) -> int:
    import urllib3

    http = urllib3.PoolManager()
    url = f"{influx}/write?db={db}&precision=ms"
    lines: list[str] = []
    lock = threading.Lock()
    oldest = [0.0]

    def flush() -> None:
        with lock:
            batch, lines[:] = lines[:], []
        if batch:
            resp = http.request("POST", url, body="\n".join(batch).encode())
            assert resp.status == 204, resp.data

    def on_message(client: mqtt.Client, userdata: object, msg: mqtt.MQTTMessage) -> None:
        doc = json.loads(msg.payload)
        fields = []
        for name, mv in doc["metrics"].items():
            fields.append(f"{name}={float(mv['value'])}")
            fields.append(f"{name}_n={mv['n']}i")
        fields.append(f"seq={doc['seq']}i")
        ts = int(datetime.fromisoformat(doc["ts"].replace("Z", "+00:00")).timestamp() * 1000)
        line = f"reading,node={doc['node']},site={doc['site']} {','.join(fields)} {ts}"
        with lock:
            if not lines:
                oldest[0] = time.monotonic()
            lines.append(line)
            full = len(lines) >= 1000
        if full:
            flush()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-pipe", protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_subscribe = lambda c, u, mid, rcs, p: ready.write_text("ok")
    client.on_connect = lambda c, u, f, rc, p: c.subscribe(f"{PREFIX}/v1/+/+/reading", qos=1)
    client.connect("127.0.0.1", port)
    client.loop_start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda s, f: stop.set())
    while not stop.wait(0.1):
        if lines and time.monotonic() - oldest[0] >= 0.5:
            flush()
    client.loop_stop()
    return 0


# ---------------------------------------------------------------------------- the benchmark driver
def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _connected(log: Path, since: int) -> bool:
    """The gateway's log says, after `since` characters (earlier rounds), that it is connected."""
    return "connected to broker" in _read(log)[since:]


def _query(influx: str, db: str, q: str) -> dict[str, object]:
    data = urllib.parse.urlencode({"q": q, "db": db}).encode()
    with urllib.request.urlopen(f"{influx}/query", data=data, timeout=30) as resp:
        doc: dict[str, object] = json.load(resp)
    return doc


def _count(influx: str, db: str) -> int:
    doc = _query(influx, db, 'SELECT count("seq") FROM "reading"')
    try:
        return int(doc["results"][0]["series"][0]["values"][0][1])  # type: ignore[index]
    except (KeyError, IndexError):
        return 0


def _tree(pid: int) -> list[int]:
    """The process and its live children (the gateway's signature worker)."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [c for k in (task / "children").read_text().split() for c in _tree(int(k))]
        except (FileNotFoundError, ProcessLookupError):
            continue
    return out


def _cpu_s(pid: int) -> float:
    total = 0.0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime + stime
    return total


def _peak_rss_mb(pid: int) -> float:
    total = 0.0
    for p in _tree(pid):
        try:
            lines = Path(f"/proc/{p}/status").read_text().splitlines()
        except FileNotFoundError:
            continue
        total += sum(int(line.split()[1]) / 1024 for line in lines if line.startswith("VmHWM:"))
    return total


PMS5003_METRICS = [
    "pm1_0",
    "pm2_5",
    "pm10",
    "pm1_0_atm",
    "pm2_5_atm",
    "pm10_atm",
    "pc0_3",
    "pc0_5",
    "pc1_0",
    "pc2_5",
    "pc5_0",
    "pc10",
]


def _metrics(seq: int, kit: str) -> dict[str, dict[str, object]]:
    pm25: dict[str, object] = {"value": 10.0 + (seq % 50) / 10, "raw": 12.0 + (seq % 7), "n": 60}
    if kit == "two":
        return {"pm2_5": pm25, "pm10": {"value": 20.5, "n": 60}}
    # what a PMS5003 kit sends: all twelve values of the frame, PM2.5 calibrated (raw and cal id)
    out: dict[str, dict[str, object]] = {}
    for k, name in enumerate(PMS5003_METRICS):
        out[name] = {"value": float(5 + k + seq % 11), "n": 60}
    out["pm2_5"] = {**pm25, "cal": "epa-2021-pa@2026-11-01"}
    return out


def _signer(k: int) -> Any:
    from contract.signing import Signer

    return Signer.from_seed(bytes([k + 1]) * 32)


def _keys(path: Path, nodes: int) -> None:
    """Each bench node's public key in a key registry (what `provision` writes)."""
    from contract.signing import public_b64
    from gateway.trust.registry import KeyRecord, save

    for k in range(nodes):
        signer = _signer(k)
        record = KeyRecord(
            kid=signer.kid,
            site="bench",
            node=f"node-{k:02d}",
            public_key=public_b64(signer.private.public_key()),
            created=datetime(2026, 1, 1, tzinfo=UTC),
        )
        save(path, record)


def _signed(messages: list[tuple[str, bytes]], nodes: int) -> list[tuple[str, bytes]]:
    """The same readings, each signed by its node, as a node sends them (`Signer.sign_wire`)."""
    from contract.wire import ReadingPayload

    signers = {f"node-{k:02d}": _signer(k) for k in range(nodes)}
    out = []
    for topic, payload in messages:
        reading = ReadingPayload.model_validate_json(payload)
        out.append((topic, signers[reading.node].sign_wire(reading)))
    return out


def _payloads(n: int, nodes: int, kit: str = "two") -> list[tuple[str, bytes]]:
    per_node = n // nodes
    # one reading a minute per node, as period_s says, ending now: windows hold what a real site's do
    start = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=per_node + 1)
    out = []
    for seq in range(1, per_node + 1):
        ts = (start + timedelta(minutes=seq)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        for k in range(nodes):
            node = f"node-{k:02d}"
            doc = {
                "schema": 1,
                "site": "bench",
                "node": node,
                "seq": seq,
                "ts": ts,
                "period_s": 60,
                "metrics": _metrics(seq, kit),
                "flags": [],
            }
            out.append((f"{PREFIX}/v1/bench/{node}/reading", json.dumps(doc, separators=(",", ":")).encode()))
    return out


def _publish(port: int, messages: list[tuple[str, bytes]], nodes: int) -> None:
    """One MQTT client per node, each in its own thread, QoS 1 with 100 in flight."""

    def run(k: int) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-node-{k}")
        client.max_inflight_messages_set(100)
        client.max_queued_messages_set(1000)
        client.connect("127.0.0.1", port)
        client.loop_start()
        last = None
        for topic, payload in messages[k::nodes]:
            while True:
                info = client.publish(topic, payload, qos=1)
                if info.rc == mqtt.MQTT_ERR_SUCCESS:
                    break
                time.sleep(0.002)  # paho's queue is full: wait for acks
            last = info
        if last is not None:
            last.wait_for_publish(120)
        client.disconnect()
        client.loop_stop()

    threads = [threading.Thread(target=run, args=(k,)) for k in range(nodes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _run_one(
    name: str,
    argv: list[str],
    ready: callable,
    port: int,
    influx: str,
    db: str,  # type: ignore[valid-type]
    messages: list[tuple[str, bytes]],
    nodes: int,
    work: Path,
) -> dict[str, float]:
    _query(influx, db, f'CREATE DATABASE "{db}"')
    log = (work / f"{name}.log").open("ab")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    deadline = time.monotonic() + 60
    while not ready():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"{name} did not start; see {work / (name + '.log')}")
        time.sleep(0.05)
    time.sleep(0.5)
    cpu0 = _cpu_s(proc.pid)
    t0 = time.monotonic()
    _publish(port, messages, nodes)
    t_pub = time.monotonic() - t0
    n = len(messages)
    deadline = time.monotonic() + 600
    count = 0
    while time.monotonic() < deadline:
        count = _count(influx, db)
        if count >= n:
            break
        time.sleep(0.1)
    elapsed = time.monotonic() - t0
    cpu = _cpu_s(proc.pid) - cpu0
    rss = _peak_rss_mb(proc.pid)
    proc.send_signal(signal.SIGTERM)
    proc.wait(60)
    return {
        "rate": n / elapsed,
        "elapsed": elapsed,
        "publish_s": t_pub,
        "cpu_us": cpu / n * 1e6,
        "rss_mb": rss,
        "stored": count,
        "lost": n - count,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1, help="alternate pipe and gateway this many times")
    parser.add_argument(
        "--no-alerts", dest="alerts", action="store_false", help="run the gateway without the alert presets"
    )
    parser.add_argument(
        "--kit",
        choices=["two", "pms5003"],
        default="two",
        help="payload: PM2.5 and PM10 (two), or all twelve metrics a PMS5003 kit sends",
    )
    parser.add_argument(
        "--signed", action="store_true", help="also run the gateway on signed readings, keys registered"
    )
    parser.add_argument(
        "--worker", action="store_true", help="with --signed: also the signed gateway with a signature worker"
    )
    parser.add_argument("--pipe", nargs=4, metavar=("PORT", "INFLUX", "DB", "READY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pipe:
        port, influx_url, db, ready_file = args.pipe
        return pipe_main(int(port), influx_url, db, Path(ready_file))
    messages = _payloads(args.n, args.nodes, args.kit)
    signed = _signed(messages, args.nodes) if args.signed else []
    with tempfile.TemporaryDirectory(prefix="minewatch-bench-") as tmp:
        work = Path(tmp)
        broker = devservices.mosquitto(work / "mosquitto")
        influxd = devservices.influxd(work / "influxd")
        broker.start()
        influxd.start()
        influx = f"http://127.0.0.1:{influxd.port}"
        results: dict[str, list[dict[str, float]]] = {"pipe": [], "gateway": []}
        if args.signed:
            results["signed"] = []
            if args.worker:
                results["worker"] = []
        try:
            for r in range(args.rounds):
                ready = work / f"pipe-ready-{r}"
                results["pipe"].append(
                    _run_one(
                        "pipe",
                        [
                            sys.executable,
                            __file__,
                            "--pipe",
                            str(broker.port),
                            influx,
                            f"pipe{r}",
                            str(ready),
                        ],
                        ready.exists,
                        broker.port,
                        influx,
                        f"pipe{r}",
                        messages,
                        args.nodes,
                        work,
                    )
                )
                for name in [n for n in results if n != "pipe"]:
                    cfg = work / f"{name}-{r}.toml"
                    data = work / f"{name}-data-{r}"
                    trust = ""
                    if name in ("signed", "worker"):
                        _keys(data / "keys", args.nodes)
                        trust = '[trust]\nrequire_signatures = "always"\n'
                        if name == "worker":
                            trust += 'check_signatures_in = "worker"\n'
                    cfg.write_text(
                        f'data_dir = "{data}"\ntopic_prefix = "{PREFIX}"\n'
                        f'[mqtt]\nport = {broker.port}\nclient_id = "bench-{name}-{r}"\n'
                        f'[influxdb]\nurl = "{influx}"\napi = "v1"\ndatabase = "{name}{r}"\n'
                        + trust
                        # every preset's rules on (WHO 2021, US EPA, MNS 4585:2016): the alert engine
                        # sees each stored reading, as on a real site
                        + (
                            '[alerts]\npresets = ["who-2021", "us-epa", "mns-4585-2016"]\n'
                            if args.alerts
                            else ""
                        )
                    )
                    log_file = work / f"{name}.log"
                    results[name].append(
                        _run_one(
                            name,
                            [sys.executable, "-m", "gateway.cli", "run", "--config", str(cfg)],
                            # subscribed, not merely started: a reading published before the
                            # gateway's first subscription is not queued for it (a first connection
                            # can fail and be retried a second later, long after status.json is written)
                            functools.partial(_connected, log_file, len(_read(log_file))),
                            broker.port,
                            influx,
                            f"{name}{r}",
                            signed if name in ("signed", "worker") else messages,
                            args.nodes,
                            work,
                        )
                    )
        finally:
            broker.stop()
            influxd.stop()
    print(
        f"N = {args.n} readings ({args.kit} kit) from {args.nodes} nodes at QoS 1, "
        "first publish until all queryable; "
        f"{os.cpu_count()} CPUs"
    )
    print(
        f"{'consumer':<9} {'readings/s':>11} {'elapsed s':>10} {'publish s':>10} {'CPU µs/reading':>15} "
        f"{'peak RSS MB':>12} {'lost':>6}"
    )
    for name, rows in results.items():
        for row in rows:
            print(
                f"{name:<9} {row['rate']:>11.0f} {row['elapsed']:>10.1f} {row['publish_s']:>10.1f} "
                f"{row['cpu_us']:>15.1f} {row['rss_mb']:>12.1f} {row['lost']:>6.0f}"
            )
    for r in range(args.rounds):
        p = results["pipe"][r]
        for name in [n for n in results if n != "pipe"]:
            g = results[name][r]
            print(
                f"round {r + 1}: {name}/pipe rate {g['rate'] / p['rate']:.2f}, "
                f"CPU per reading {g['cpu_us'] / p['cpu_us']:.2f}x the pipe's"
            )
    if args.rounds > 1:  # other processes share the machine: medians are steadier than any one round
        med = {
            name: {k: statistics.median(row[k] for row in rows) for k in rows[0]}
            for name, rows in results.items()
        }
        p = med["pipe"]
        for name in [n for n in results if n != "pipe"]:
            g = med[name]
            print(
                f"medians of {args.rounds} rounds: pipe {p['rate']:.0f}/s {p['cpu_us']:.1f} µs, "
                f"{name} {g['rate']:.0f}/s {g['cpu_us']:.1f} µs {g['rss_mb']:.1f} MB; "
                f"{name}/pipe rate {g['rate'] / p['rate']:.2f}, "
                f"CPU per reading {g['cpu_us'] / p['cpu_us']:.2f}x"
            )
            # Each round measures them back to back, so its ratios are paired against the
            # machine's speed of the moment; the median of those is the steadier comparison.
            pairs = list(zip(results["pipe"], results[name], strict=True))
            rate = statistics.median(gw["rate"] / pp["rate"] for pp, gw in pairs)
            cpu = statistics.median(gw["cpu_us"] / pp["cpu_us"] for pp, gw in pairs)
            print(
                f"median of the rounds' own ratios: {name}/pipe rate {rate:.2f}, CPU per reading {cpu:.2f}x"
            )
    return 0 if all(row["lost"] == 0 for rows in results.values() for row in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
