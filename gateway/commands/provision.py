"""`minewatch-gateway provision`: a node's identity (key pair, MQTT account, node.toml) or a monitor's
account; `--rotate` issues a new key, `--revoke` withdraws one. Mosquitto is told to reload."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path
from typing import Any

from contract.configfile import ConfigError
from contract.wire import is_identifier
from gateway.config import DEFAULT_MQTT_USER, GatewayConfig, load
from gateway.timerange import QueryArgumentError, parse_time
from gateway.trust.broker import BrokerError, BrokerLayout, reload_broker, write_acl
from gateway.trust.provision import (
    NodeTarget,
    Outcome,
    ProvisionError,
    provision_account,
    provision_node,
    retire_node,
    revoke_account,
    revoke_node,
)


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "provision",
        help="create (or --rotate, --revoke) a node's identity, or a monitor's MQTT account",
        description=__doc__,
    )
    parser.add_argument("--config", required=True, help="path to gateway.toml (data_dir, topic_prefix)")
    who = parser.add_mutually_exclusive_group(required=True)
    who.add_argument("--node", help="node id (with --site)")
    who.add_argument("--monitor", help="a monitor's account name: it may read alerts only")
    parser.add_argument("--site", help="site id of --node")
    parser.add_argument(
        "--out", type=Path, help="directory for the node's (or monitor's) files; secrets, mode 600"
    )
    parser.add_argument(
        "--revoke",
        action="store_true",
        help="the node's key was compromised: revoke its keys (see --since) and delete its account",
    )
    parser.add_argument(
        "--since",
        help="with --revoke: UTC time since when the key is untrusted (default now); readings "
        "stored before it stay verifiable",
    )
    parser.add_argument(
        "--retire",
        action="store_true",
        help="decommission the node: retire its keys (past readings stay valid), delete its account",
    )
    parser.add_argument("--rotate", action="store_true", help="issue a new key; the old one is retired")
    parser.add_argument("--broker-dir", type=Path, help="broker files (default <data_dir>/broker)")
    parser.add_argument(
        "--broker-pid",
        type=Path,
        help="Mosquitto's PID file, to make it reload (default <broker-dir>/mosquitto.pid)",
    )
    parser.add_argument("--mqtt-host", default=socket.getfqdn(), help="broker address the node connects to")
    parser.add_argument("--mqtt-port", type=int, help="default 8883 with TLS, 1883 without")
    parser.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="default: on when the site CA exists",
    )
    parser.add_argument("--sensor", default="simulated-pm", help="sensor type written into node.toml")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    layout = BrokerLayout(args.broker_dir or cfg.data_dir / "broker")
    try:
        outcome = _run(args, cfg, layout)
    except (ProvisionError, BrokerError, QueryArgumentError) as exc:
        raise ConfigError(str(exc)) from exc
    write_acl(layout, prefix=cfg.topic_prefix, gateway_user=cfg.mqtt.username or DEFAULT_MQTT_USER)
    for line in outcome.changed:
        print(line)
    if not outcome.changed:
        print("nothing to do: already provisioned")
    if outcome.kid:
        print(f"key id {outcome.kid}")
    try:
        pid = reload_broker(args.broker_pid or layout.pid_file)
    except BrokerError as exc:
        print(f"minewatch-gateway provision: {exc}", file=sys.stderr)
        return 1
    print(
        f"told Mosquitto (pid {pid}) to reload"
        if pid
        else "Mosquitto is not running: it reads the files at start"
    )
    return 0


def _run(args: argparse.Namespace, cfg: GatewayConfig, layout: BrokerLayout) -> Outcome:
    if args.monitor:
        if not is_identifier(args.monitor):
            raise ProvisionError(f"--monitor {args.monitor!r}: use lowercase letters, digits, - and _")
        if args.revoke:
            return revoke_account(args.monitor, layout)
        if args.out is None:
            raise ProvisionError("--out DIR is required: the monitor's password is written there")
        return provision_account(args.monitor, args.out, layout)
    if not args.site or not is_identifier(args.site) or not is_identifier(args.node):
        raise ProvisionError("--site and --node must be ids: lowercase letters, digits, - and _")
    if args.revoke and args.retire:
        raise ProvisionError("--revoke or --retire, not both")
    if args.since is not None and not args.revoke:
        raise ProvisionError("--since goes with --revoke")
    if args.revoke:
        since = parse_time(args.since, "--since") if args.since else None
        return revoke_node(args.site, args.node, cfg.keys_dir, layout, since=since)
    if args.retire:
        return retire_node(args.site, args.node, cfg.keys_dir, layout)
    if args.out is None:
        raise ProvisionError("--out DIR is required: the node's key and password are written there")
    tls = (layout.ca_dir / "ca.crt").exists() if args.tls is None else args.tls
    target = NodeTarget(
        site=args.site,
        node=args.node,
        out=args.out,
        mqtt_host=args.mqtt_host,
        mqtt_port=args.mqtt_port or (8883 if tls else 1883),
        tls=tls,
        topic_prefix=cfg.topic_prefix,
        sensor=args.sensor,
    )
    return provision_node(target, cfg.keys_dir, layout, rotate=args.rotate)
