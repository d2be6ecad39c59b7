"""`make demo`: a whole site on this machine for DEMO_SECONDS (default 90).

Starts a private Mosquitto and influxd, the gateway and three simulated nodes at site `tsagaan`:
`haul-road` (dust, with a dust event), `river-down` (turbidity, with a spike) and `river-up` (the
clean upstream reference). Prints each alert as it is raised and cleared, set apart (dust over
100 µg/m³ at the haul road; the river more than 5 NTU above upstream), a progress line every
PROGRESS_S (each stored reading only with DEMO_VERBOSE=1: three lines every 5 s buried the alerts),
then a summary queried back from InfluxDB. With DEMO_KEEP=1 the broker's, the database's and the
gateway's state stay in their directory, with a gateway.toml, and it prints how to start the
database again and the queries a regulator would type; without, it says so, as that state is
deleted. Stops everything it started.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
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
PROGRESS_S = 30
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
    node.sign = signer.sign_wire
    return node


class Progress:
    """Counts what is stored; says so every PROGRESS_S, in one line, so that alerts stand out."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.stored: Counter[str] = Counter()
        self.active: set[str] = set()
        self._next = time.monotonic() + PROGRESS_S

    def on_stored(self, readings: list[ReadingPayload]) -> None:
        self.stored.update(r.node for r in readings)
        if self.verbose:
            _print_stored(readings)
        elif time.monotonic() >= self._next:
            self._next += PROGRESS_S
            per_node = ", ".join(f"{node} {n}" for node, n in sorted(self.stored.items()))
            print(
                f"{datetime.now(UTC):%H:%M:%S}Z  {sum(self.stored.values())} readings stored ({per_node}); "
                f"{len(self.active)} alert(s) active",
                flush=True,
            )

    def on_alert(self, event: AlertEvent) -> None:
        if event.state == "raised":
            self.active.add(event.id)
        elif event.state == "cleared":
            self.active.discard(event.id)
        _print_alert(event)


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
    print(f"\n*** ALERT {event.state.upper()}  {event.id}\n    {event.message}\n", flush=True)


def main() -> int:
    seconds = int(os.environ.get("DEMO_SECONDS", "90"))
    keep = os.environ.get("DEMO_KEEP", "") not in ("", "0")
    progress = Progress(verbose=os.environ.get("DEMO_VERBOSE", "") not in ("", "0"))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    work = Path(tempfile.mkdtemp(prefix="minewatch-demo-"))
    try:
        return _run(work, seconds, keep, progress)
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _run(work: Path, seconds: int, keep: bool, progress: Progress) -> int:
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
    hooks = Hooks(on_stored=[progress.on_stored])
    alerts = Alerts(
        cfg, publish=through(parts.subscriber), publish_retained=through(parts.subscriber, retain=True)
    )
    alerts.on_event.append(progress.on_alert)
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
        print(f"each signs its readings; the gateway checks them with the keys in {cfg.keys_dir}")
        print(f"alerts are printed as they come; a line every {PROGRESS_S} s says what is stored\n")
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
    queries: list[str] = []
    try:
        queries = _summary(open_reader(InfluxConfig(url=influx_url, database="minewatch", api="v1")))  # type: ignore[arg-type]
    finally:
        broker.stop()
        influxd.stop()
    _after(work, influxd.port, keep, queries)
    return 0


def _after(work: Path, influx_port: int, keep: bool, queries: list[str]) -> None:
    """How to look at the data again, when it is kept; that it is gone, when it is not."""
    if not keep:
        print(
            f"\nThe demo's data was in {work} and is deleted now. To keep it and query it afterwards "
            "(influx, minewatch-gateway report): DEMO_KEEP=1 make demo"
        )
        return
    (work / "gateway.toml").write_text(
        f'data_dir = "{work / "gateway"}"\n[influxdb]\nurl = "http://127.0.0.1:{influx_port}"\n'
        'database = "minewatch"\napi = "v1"\n'
    )
    today = datetime.now(UTC).date()
    print(f"\nThe demo's data is kept in {work}. Start its database again, then query it:")
    print(f"  influxd run -config {work / 'influxd' / 'influxdb.conf'} &")
    for query in queries:  # the very queries behind the summary above, as the reader ran them
        influx = f"influx -port {influx_port} -database minewatch -precision rfc3339"
        print(f"  {influx} -execute {_shell(query)}")
    print(
        f"  minewatch-gateway report --config {work / 'gateway.toml'} --site {SITE} "
        f"--start {today} --end {today + timedelta(days=1)} --out {work / 'report.html'}"
    )
    print(f"When done: kill the influxd you started, and rm -r {work}")


def _dashboard(cfg: GatewayConfig, board: StatusBoard) -> BackgroundServer:
    """The public dashboard on a free port while the demo runs, fed node statuses by the gateway."""
    web = WebConfig(port=devservices.free_port())
    server = BackgroundServer(app_for(cfg.model_copy(update={"web": web}), board), web)
    server.start()
    print(f"dashboard: http://127.0.0.1:{web.port}/  (JSON: /api/v1/latest)")
    return server


def _shell(text: str) -> str:
    """`text` as one shell word a reader can still read: in double quotes when nothing in it is
    special there (InfluxQL's own quotes: "field" and 'string'), else as shlex quotes it."""
    if any(c in text for c in "$`\\!"):
        return shlex.quote(text)
    return '"' + text.replace('"', '\\"') + '"'


def _summary(reader: Reader) -> list[str]:
    """Print what is stored; return the text of the queries behind it (for `influx`)."""
    queries: list[str] = []
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
        for row in reader.aggregate(everything, metric, ["max"], trace=queries.append):
            row["mean"] = means.get(str(row["node"]))
            if row.get("max") is not None:
                unit = METRIC_UNITS[Metric(metric)]
                print(
                    f"  {row['node']:<10} {metric:<9} max {row['max']:.1f} {unit}, "
                    f"mean {row['mean']:.1f} {unit}"
                )
    print("A regulator sees the same in `minewatch-gateway report`, with the query behind each table.")
    return queries


if __name__ == "__main__":
    sys.exit(main())
