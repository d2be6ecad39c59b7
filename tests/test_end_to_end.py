"""Two simulated nodes, the gateway, the real broker and the real influxd, all as real processes.
InfluxDB must hold every published reading exactly once, with the right values, tags and times."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from gateway.devservices import Service
from tests.helpers import Influx, Listener, gateway_toml, node_toml, publish, spawn, wait_for


def test_every_published_reading_is_stored_exactly_once(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    gw_cfg = gateway_toml(
        workdir / "gateway.toml", mqtt_port=mosquitto.port, influx_url=influx.url, db=influx.db, prefix=prefix
    )
    gateway = spawn(["gateway.cli", "run", "--config", str(gw_cfg)], workdir / "gateway.log")

    # The nodes' first readings must not race the gateway's subscription: wait until it has refused
    # a probe, so it certainly listens (the listener starts after, so it never hears the probes).
    def gateway_listens() -> bool:
        publish(mosquitto.port, f"{prefix}/v1/tsagaan/probe/reading", b"{}")
        return "rejected message" in (workdir / "gateway.log").read_text()

    wait_for(gateway_listens, 30, "the gateway to subscribe")
    listener = Listener(mosquitto.port, f"{prefix}/v1/+/+/reading")
    nodes = []
    try:
        for name, sensor in (("haul-road", "simulated-pm"), ("river-down", "simulated-turbidity")):
            cfg = node_toml(
                workdir / f"{name}.toml",
                site="tsagaan",
                node=name,
                port=mosquitto.port,
                prefix=prefix,
                sensors=f'[[sensors]]\ntype = "{sensor}"\nsample_interval_s = 0.25\n',
            )
            nodes.append(spawn(["node.cli", "run", "--config", str(cfg)], workdir / f"{name}.log"))
        wait_for(lambda: len(listener.payloads()) >= 10, 30, "ten readings published")
        # garbage and a topic/payload mismatch in the middle of the stream must not stop anything
        publish(mosquitto.port, f"{prefix}/v1/tsagaan/haul-road/reading", b"\x00garbage")
        good = listener.payloads()[0]
        publish(mosquitto.port, f"{prefix}/v1/tsagaan/impostor/reading", json.dumps(good).encode())
        wait_for(lambda: len(listener.payloads()) >= 16, 30, "more readings after the garbage")
    finally:
        for proc in nodes:
            proc.send_signal(signal.SIGTERM)
        for proc in nodes:
            assert proc.wait(15) == 0
    published = listener.payloads()
    # the impostor copy was published on another node's topic: only the nodes' own topics count
    mine = {(p["node"], p["seq"]): p for p in published if p["node"] in ("haul-road", "river-down")}
    assert len(mine) == len(published) - 1
    try:
        wait_for(lambda: influx.count() >= len(mine), 30, "all readings in InfluxDB")
        rows = influx.rows('SELECT * FROM "reading" GROUP BY "site", "node"')
    finally:
        gateway.send_signal(signal.SIGTERM)
        assert gateway.wait(15) == 0
        listener.close()
    stored = {(r["node"], r["seq"]): r for r in rows}
    assert len(rows) == len(mine), "each reading stored once, nothing else stored"
    assert stored.keys() == mine.keys()
    for key, payload in mine.items():
        row = stored[key]
        assert row["site"] == "tsagaan"
        assert row["time"] == _epoch_ms(payload["ts"])
        for metric, mv in payload["metrics"].items():
            assert row[metric] == mv["value"]
            assert row[f"{metric}_raw"] == mv["raw"]
            assert row[f"{metric}_n"] == mv["n"]
        assert row["flags"] == ",".join(payload["flags"])
    assert {n for n, _ in stored} == {"haul-road", "river-down"}
    assert "turbidity" in stored[("river-down", 1)] and stored[("river-down", 1)]["turbidity"] is not None
    log = (workdir / "gateway.log").read_text()
    assert "not_json" in log and "topic_mismatch" in log


def _epoch_ms(ts: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp() * 1000)
