"""`minewatch-gateway ack <alert-id> --by NAME`: acknowledge an active alert; `--list` shows them.

The request goes into the gateway's alert store (`<data_dir>/alerts.sqlite`); the running gateway
applies it within about a second (reminders stop, the acknowledgement is recorded in InfluxDB and
published on the alert topic; the all-clear still comes). A gateway that is not running applies it
when it starts.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from contract.configfile import ConfigError
from gateway.alerts.service import STATUS_FILE
from gateway.alerts.store import AlertStore
from gateway.config import load


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "ack", help="acknowledge an active alert (or --list them)"
    )
    parser.add_argument("alert_id", nargs="?", help="the alert's id, as in its message or `--list`")
    parser.add_argument("--by", help="who acknowledges (recorded and published)")
    parser.add_argument("--config", required=True, help="path to gateway.toml")
    parser.add_argument("--list", action="store_true", help="list active alerts and rules not evaluated")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the gateway (10)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    store = AlertStore(cfg.data_dir / "alerts.sqlite")
    try:
        if args.list:
            return _list(store, cfg.data_dir / STATUS_FILE)
        if not args.alert_id or not args.by:
            raise ConfigError("ack needs an alert id and --by NAME (or --list)")
        active = {m.alert_id for m in store.machines() if m.alert_id}
        if args.alert_id not in active:
            raise ConfigError(f"no active alert {args.alert_id!r}; see `minewatch-gateway ack --list`")
        request = store.request_ack(args.alert_id, args.by[:64])
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline:
            result = store.ack_result(request)
            if result is not None:
                print(f"{args.alert_id}: {result}")
                return 0 if result == "acknowledged" else 1
            time.sleep(0.1)
        print(f"{args.alert_id}: recorded; the gateway applies it when it runs")
        return 0
    finally:
        store.close()


def _list(store: AlertStore, status_file: Any) -> int:
    machines = store.machines()
    active = [m for m in machines if m.alert_id]
    if not active:
        print("no active alerts")
    for m in sorted(active, key=lambda m: m.started_ms):
        started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(m.started_ms / 1000))
        acked = f", acknowledged by {m.acked_by}" if m.acked_by else ""
        print(f"{m.alert_id}  since {started}  value {m.value}  peak {m.peak}{acked}")
    for m in machines:
        if not m.evaluable:
            print(f"not evaluated: {m.rule} at {m.node} ({m.site}): {m.reason}")
    try:
        status = json.loads(status_file.read_text())
        for label, stats in status.get("channels", {}).items():
            counts = f"sent {stats['sent']}, failures {stats['failures']}, given up {stats['given_up']}"
            print(f"channel {label}: {counts}")
    except (OSError, ValueError):
        pass
    failed = store.failed_count()
    if failed:
        print(f"{failed} notifications could not be delivered (kept in {status_file.parent}/alerts.sqlite)")
    return 0
