"""`make demo`: a whole site on this machine for DEMO_SECONDS (default 90).

Starts a private Mosquitto and influxd, the gateway and three simulated nodes at site `tsagaan`:
`haul-road` (dust, with a dust event), `river-down` (turbidity, with a spike) and `river-up` (the
clean upstream reference). Prints each reading as it is stored and each alert as it is raised and
cleared (dust over 100 µg/m³ at the haul road; the river more than 5 NTU above upstream), then a
summary queried back from InfluxDB and the InfluxQL a regulator would type to see the same. Stops
everything it started.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from contract.metrics import METRIC_UNITS, Metric
from contract.signing import Signer
from contract.wire import ReadingPayload
from gateway import devservices
from gateway.alerts.config import AlertsConfig
from gateway.alerts.events import AlertEvent
from gateway.alerts.service import Alerts, through
from gateway.config import BatchConfig, GatewayConfig, InfluxConfig, MqttConfig, WebConfig
from gateway.hooks import Hooks
from gateway.stores import Reader, Span, open_reader
from gateway.trust.provision import register
from gateway.web.server import BackgroundServer, app_for
from gateway.web.status import StatusBoard
from gateway.wiring import assemble, open_parts
from node.config import NodeConfig
from node.service import NodeService

SITE = "tsagaan"
INTERVAL_S = 5
POSITIONS = {  # made-up positions along a haul road and a river, for the dashboard's map
    "haul-road": {"lat": 43.1105, "lon": 106.8503},
    "river-down": {"lat": 43.0921, "lon": 106.8712},
    "river-up": {"lat": 43.1302, "lon": 106.8154},
}


def _nodes(mqtt_port: int, state: Path, seconds: int) -> list[NodeConfig]:
    event_at = max(seconds // 4, 10)
    event_len = max(seconds // 3, 15)
    base = {
        "site": SITE,
        "interval_s": INTERVAL_S,
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port},
        # The demo's nodes run on the gateway's own machine and share its clock; a sandbox or VM
        # whose kernel never ran NTP would otherwise flag every reading clock_unsynced.
        "clock_sync": "rtc",
    }
    specs = [
        (
            "haul-road",
            {
                "type": "simulated-pm",
                "seed": 11,
                "baseline": 14.0,
                "noise": 2.0,
                "events": [{"start_s": event_at, "duration_s": event_len, "add": 140.0}],
            },
        ),
        (
            "river-down",
            {
                "type": "simulated-turbidity",
                "seed": 12,
                "baseline": 5.0,
                "noise": 0.3,
                "events": [{"start_s": event_at + 5, "duration_s": event_len, "add": 30.0}],
            },
        ),
        ("river-up", {"type": "simulated-turbidity", "seed": 13, "baseline": 4.5, "noise": 0.3}),
    ]
    return [
        NodeConfig.model_validate(
            {
                **base,
                **POSITIONS[name],
                "node": name,
                "buffer": {"path": str(state / f"{name}.sqlite")},
                "sensors": [sensor],
            }
        )
        for name, sensor in specs
    ]


def _signing(node: NodeService, keys_dir: Path) -> NodeService:
    """Give a demo node a key of its own and register it, as `minewatch-gateway provision` would."""
    signer = Signer.generate()
    register(keys_dir, node.cfg.site, node.cfg.node, signer)
    node.sign = signer.sign
    return node


def _print_stored(readings: list[ReadingPayload]) -> None:
    for r in readings:
        values = "  ".join(
            f"{m.value}={mv.value:.1f} {METRIC_UNITS[m]}" if mv.value is not None else f"{m.value}=null"
            for m, mv in sorted(r.metrics.items(), key=lambda item: list(Metric).index(item[0]))
        )
        flags = f"  flags={','.join(f.value for f in r.flags)}" if r.flags else ""
        print(f"stored  {r.ts:%H:%M:%S}Z  {r.site}/{r.node:<10}  seq={r.seq:<3}  {values}{flags}", flush=True)


DEMO_ALERTS = {
    "rules": [
        {
            "name": "dust-instant",
            "type": "threshold",
            "metric": "pm2_5",
            "limit": 100.0,
            "clear_below": 60.0,
            "clear_after": "10s",
            "remind_every": "0",
            "nodes": ["haul-road"],
        },
        {
            "name": "river-over-background",
            "type": "difference",
            "metric": "turbidity",
            "node": "river-down",
            "reference": "river-up",
            "limit": 5.0,
            "average": "instant",
            "clear_after": "10s",
            "remind_every": "0",
        },
    ]
}


def _print_alert(event: AlertEvent) -> None:
    print(f"ALERT   {event.state.upper():<9} {event.id}\n        {event.message}", flush=True)


def main() -> int:
    seconds = int(os.environ.get("DEMO_SECONDS", "90"))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with tempfile.TemporaryDirectory(prefix="minewatch-demo-") as tmp:
        work = Path(tmp)
        broker = devservices.mosquitto(work / "mosquitto", persistent=True)  # as in production
        influxd = devservices.influxd(work / "influxd")
        broker.start()
        influxd.start()
        print(f"mosquitto on 127.0.0.1:{broker.port}, influxd on 127.0.0.1:{influxd.port}, state in {work}")
        influx_url = f"http://127.0.0.1:{influxd.port}"
        cfg = GatewayConfig(
            data_dir=work / "gateway",
            mqtt=MqttConfig(port=broker.port, client_id="demo-gateway"),
            influxdb=InfluxConfig(url=influx_url, database="minewatch"),  # type: ignore[arg-type]
            batch=BatchConfig(max_delay_s=0.2),
            alerts=AlertsConfig.model_validate(DEMO_ALERTS),
        )
        nodes = [  # keys registered before the gateway's key registry is read
            _signing(NodeService(node_cfg), cfg.keys_dir)
            for node_cfg in _nodes(broker.port, work / "nodes", seconds)
        ]
        parts = open_parts(cfg)
        hooks = Hooks(on_stored=[_print_stored])
        alerts = Alerts(cfg, publish=through(parts.subscriber))
        alerts.on_event.append(_print_alert)
        alerts.install(hooks)
        board = StatusBoard(cfg.topic_prefix)
        hooks.handlers.append(("status", board.handle))
        gw = assemble(parts, hooks)
        alerts.start()
        web = _dashboard(cfg, board)
        gw_thread = threading.Thread(target=gw.run, name="gateway")
        threads = [threading.Thread(target=n.run, name=n.cfg.node) for n in nodes]
        try:
            gw_thread.start()
            for t in threads:
                t.start()
            print(f"three nodes at {SITE}, one reading every {INTERVAL_S} s each, for {seconds} s ...")
            print(f"each signs its readings; the gateway checks them with the keys in {cfg.keys_dir}\n")
            time.sleep(seconds)
        except KeyboardInterrupt:
            print("\ninterrupted: stopping")
        finally:
            for n in nodes:
                n.stop_event.set()
            for t in threads:
                t.join(15)
            time.sleep(1.0)  # let the gateway write the last batch
            gw.stop_event.set()
            gw_thread.join(15)
            alerts.stop()
            web.stop()
        try:
            _summary(open_reader(InfluxConfig(url=influx_url, database="minewatch", api="v1")))  # type: ignore[arg-type]
        finally:
            broker.stop()
            influxd.stop()
    return 0


def _dashboard(cfg: GatewayConfig, board: StatusBoard) -> BackgroundServer:
    """The public dashboard on a free port while the demo runs, fed node statuses by the gateway."""
    web = WebConfig(port=devservices.free_port())
    server = BackgroundServer(app_for(cfg.model_copy(update={"web": web}), board), web)
    server.start()
    print(f"dashboard: http://127.0.0.1:{web.port}/  (JSON: /api/v1/latest)")
    return server


def _summary(reader: Reader) -> None:
    print("\nSummary, queried back from InfluxDB:")
    now = datetime.now(UTC)
    everything = Span(SITE, [], now - timedelta(days=1), now + timedelta(days=1))
    counts = {str(r["node"]): r["count"] for r in reader.aggregate(everything, "seq", ["count"])}
    signed = {str(r["node"]): r["count"] for r in reader.aggregate(everything, "sig", ["count"])}
    alerts = reader.alerts(everything.start, everything.end, limit=100_000)
    print(f"  {len(alerts)} alert events in measurement alert")
    for node, count in counts.items():
        print(f"  {node:<10} {count} readings, {signed.get(node) or 0} signed and verified")
    for metric in ("pm2_5", "turbidity"):
        means = {str(r["node"]): r["mean"] for r in reader.aggregate(everything, metric, ["mean"])}
        for row in reader.aggregate(everything, metric, ["max"]):
            row["mean"] = means.get(str(row["node"]))
            if row.get("max") is not None:
                unit = METRIC_UNITS[Metric(metric)]
                print(
                    f"  {row['node']:<10} {metric:<9} max {row['max']:.1f} {unit}, "
                    f"mean {row['mean']:.1f} {unit}"
                )
    print("\nA regulator sees the same in `minewatch-gateway report`, with the query behind each table.")


if __name__ == "__main__":
    sys.exit(main())
