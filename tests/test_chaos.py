"""Chaos run with real processes: 20 nodes publish while the broker is restarted, influxd is stopped
for 30 s and started again, and the gateway is killed with SIGKILL twice (once during the outage,
with readings in its spool, once while it drains the spool). Afterwards InfluxDB must hold every
reading the nodes committed exactly once.

The nodes run as 4 processes of 5 node services each (real NodeService, outbox and paho publisher,
one thread per node; see tests/chaos_nodes.py) to keep 20 nodes within a 2-core machine. The broker
is private and persistent, as production brokers must be (docs/operations.md): a broker restart
without persistence forgets the gateway's queued session.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from gateway import devservices
from tests.helpers import ROOT, Influx, gateway_toml, node_toml, spawn, wait_for

NODE_PROCESSES = 4
NODES_PER_PROCESS = 5
OUTAGE_S = 30.0


def _start_gateway(cfg: Path, log: Path) -> subprocess.Popen[bytes]:
    return spawn(["gateway.cli", "run", "--config", str(cfg)], log)


def test_chaos_every_reading_exactly_once(tmp_path: Path, prefix: str) -> None:
    broker = devservices.mosquitto(tmp_path / "mosquitto", persistent=True)
    influxd = devservices.influxd(tmp_path / "influxd")
    broker.start()
    influxd.start()
    influx = Influx(f"http://127.0.0.1:{influxd.port}", "chaos")
    influx.create()
    gw_cfg = gateway_toml(
        tmp_path / "gateway.toml",
        mqtt_port=broker.port,
        influx_url=influx.url,
        db=influx.db,
        prefix=prefix,
        # small batches, so the spool drains in many writes (about a second's worth) and the second
        # kill can land mid-drain
        extra="max_size = 10\n[spool]\nretry_max_s = 1.0\n",
    )
    gw_log = tmp_path / "gateway.log"
    gateway = _start_gateway(gw_cfg, gw_log)
    # the gateway's session and subscription must exist before the first reading, as in production
    wait_for(lambda: "connected to broker" in gw_log.read_text(), 60, "the gateway connected")
    node_procs: list[tuple[subprocess.Popen[bytes], Path]] = []
    try:
        for p in range(NODE_PROCESSES):
            cfgs = [
                node_toml(
                    tmp_path / f"n{p}-{k}.toml",
                    site="chaos",
                    node=f"n{p}-{k}",
                    port=broker.port,
                    prefix=prefix,
                    sensors='[[sensors]]\ntype = "simulated-pm"\nsample_interval_s = 0.5\n',
                )
                for k in range(NODES_PER_PROCESS)
            ]
            out = tmp_path / f"nodes-{p}.json"
            handle = (tmp_path / f"nodes-{p}.log").open("ab")
            proc = subprocess.Popen(
                [sys.executable, "-m", "tests.chaos_nodes", str(out), *map(str, cfgs)],
                stdout=handle,
                stderr=subprocess.STDOUT,
                cwd=ROOT,
            )
            node_procs.append((proc, out))
        wait_for(lambda: _nodes_seen(influx) == 20, 60, "a reading from each of the 20 nodes stored")

        broker.stop()  # graceful: a persistent broker saves its sessions and queues
        broker.start()
        before = influx.count()
        wait_for(lambda: influx.count() > before, 30, "readings flowing after the broker restart")

        before_outage = influx.count()
        influxd.stop()
        outage_from = time.monotonic()
        time.sleep(6)  # the gateway spools and acknowledges
        gateway.kill()  # SIGKILL with readings in the spool
        gateway.wait(10)
        gateway = _start_gateway(gw_cfg, gw_log)
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - outage_from)))
        influxd.start()
        spool = tmp_path / "gateway-data" / "spool.sqlite"
        wait_for(
            # more than a batch beyond what was stored before the outage: the drain has written a few
            # batches of 10, and the spool still holds readings
            lambda: influx.count() > before_outage + 30 and _spool_depth(spool) > 0,
            60,
            "the spool draining into InfluxDB with readings still in it",
        )
        gateway.kill()  # SIGKILL while draining
        gateway.wait(10)
        gateway = _start_gateway(gw_cfg, gw_log)
        time.sleep(3)
    finally:
        for proc, _ in node_procs:
            proc.send_signal(signal.SIGTERM)
        for proc, _ in node_procs:
            proc.wait(30)
    try:
        committed: dict[str, list[int]] = {}
        for proc, out in node_procs:
            assert proc.returncode == 0
            doc = json.loads(out.read_text())
            assert set(doc["left_in_outbox"].values()) == {0}, "every reading reached the broker"
            committed.update(doc["committed"])
        total = sum(len(seqs) for seqs in committed.values())
        assert len(committed) == 20 and total >= 20 * 20
        try:
            wait_for(lambda: influx.count() >= total, 60, f"all {total} readings in InfluxDB")
        finally:
            time.sleep(1.0)  # anything extra would show up now
            rows = influx.rows('SELECT "seq" FROM "reading" GROUP BY "node"')
            missing = {
                n: sorted(set(s) - {r["seq"] for r in rows if r["node"] == n}) for n, s in committed.items()
            }
            print("missing:", {n: m for n, m in missing.items() if m})
    finally:
        gateway.send_signal(signal.SIGTERM)
        gateway.wait(20)
        broker.stop()
        influxd.stop()
    stored: dict[str, list[int]] = {}
    for row in rows:
        stored.setdefault(row["node"], []).append(row["seq"])
    assert len(rows) == total, "each reading stored exactly once"
    for node, seqs in committed.items():
        assert sorted(stored[node]) == sorted(seqs) == list(range(1, len(seqs) + 1)), node
    log = gw_log.read_text()
    # the gateway restarted during the outage started (InfluxDB down): three runs, none refused
    assert log.count(": data in ") == 3 and "ERROR" not in log, "every start of the gateway ran"
    # each restart after a kill found readings in the spool, the second one mid-drain
    assert log.count("readings wait in the spool from before") >= 2, "a killed gateway found its spool"
    assert "Traceback" not in log


def _nodes_seen(influx: Influx) -> int:
    return len(influx.rows('SELECT count("seq") FROM "reading" GROUP BY "node"'))


def _spool_depth(path: Path) -> int:
    """Readings waiting in the gateway's spool, read as another process would (read-only)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1.0)) as db:
            return int(db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])
    except sqlite3.Error:
        return 0
