"""Two simulated nodes, the gateway, the real broker and the real influxd, all as real processes.
InfluxDB must hold every published reading exactly once, with the right values, tags and times."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

from gateway.devservices import Service
from tests.helpers import (
    Influx,
    Listener,
    gateway_toml,
    node_toml,
    publish,
    spawn,
    wait_for,
    wait_gateway_ready,
)


def test_every_published_reading_is_stored_exactly_once(
    mosquitto: Service, influx: Influx, workdir: Path, prefix: str
) -> None:
    listener = Listener(mosquitto.port, f"{prefix}/v1/+/+/reading")
    own = (f"{prefix}/v1/tsagaan/haul-road/reading", f"{prefix}/v1/tsagaan/river-down/reading")

    def published() -> list[dict[str, Any]]:
        """What the nodes published on their own topics (not the probe, garbage or impostor)."""
        return [json.loads(p) for t, p, _ in list(listener.messages) if t in own and p.startswith(b"{")]

    gw_cfg = gateway_toml(
        workdir / "gateway.toml", mqtt_port=mosquitto.port, influx_url=influx.url, db=influx.db, prefix=prefix
    )
    gateway = spawn(["gateway.cli", "run", "--config", str(gw_cfg)], workdir / "gateway.log")
    try:
        nodes = []
        try:
            wait_gateway_ready(mosquitto.port, prefix, influx)
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
            wait_for(lambda: len(published()) >= 10, 30, "ten readings published")
            # garbage and a topic/payload mismatch in the middle of the stream must not stop anything
            publish(mosquitto.port, f"{prefix}/v1/tsagaan/haul-road/reading", b"\x00garbage")
            good = published()[0]
            publish(mosquitto.port, f"{prefix}/v1/tsagaan/impostor/reading", json.dumps(good).encode())
            wait_for(lambda: len(published()) >= 16, 30, "more readings after the garbage")
        finally:
            for proc in nodes:
                proc.send_signal(signal.SIGTERM)
            for proc in nodes:
                assert proc.wait(15) == 0
        query = 'SELECT * FROM "reading" WHERE "site" = \'tsagaan\' GROUP BY "site", "node"'
        sent: list[dict[str, Any]] = []
        rows: list[dict[str, Any]] = []

        def agree() -> bool:
            # A node publishes a last partial reading as it stops, which the listener may hear a
            # moment after the gateway stored it: compare once both have seen the same readings.
            nonlocal sent, rows
            sent, rows = published(), influx.rows(query)
            return {(r["node"], r["seq"]) for r in rows} == {(p["node"], p["seq"]) for p in sent}

        try:
            wait_for(agree, 60, "all readings in InfluxDB")
        finally:
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(15) == 0
            listener.close()
    finally:  # whatever failed above, never leave a gateway behind
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait(15)
    mine = {(p["node"], p["seq"]): p for p in sent}
    assert len(mine) == len(sent) >= 16
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
