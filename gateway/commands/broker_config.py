"""`minewatch-gateway broker-config --out DIR`: the site's Mosquitto configuration (docs/trust.md):
no anonymous access, hashed passwords, an ACL that lets no node speak for another, loopback and TLS
listeners, persistence and queue limits sized for a week of backlog; a local CA unless --no-ca."""

from __future__ import annotations

import argparse
import getpass
import os
import pwd
import socket
import sys
from pathlib import Path
from typing import Any

from gateway.config import DEFAULT_MQTT_USER, load
from gateway.trust.broker import (
    BrokerError,
    BrokerLayout,
    QueueSizing,
    ensure_passwd,
    reload_broker,
    render_conf,
    write_acl,
)
from gateway.trust.provision import provision_account


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "broker-config", help="write the site's Mosquitto configuration, ACL and CA", description=__doc__
    )
    parser.add_argument(
        "--config", required=True, help="path to gateway.toml (data_dir, topic_prefix, [mqtt])"
    )
    parser.add_argument(
        "--out", type=Path, help="directory for the broker's files (default <data_dir>/broker)"
    )
    parser.add_argument("--port", type=int, default=1883, help="loopback listener (default 1883)")
    parser.add_argument("--tls-port", type=int, default=8883, help="TLS listener (default 8883)")
    parser.add_argument("--tls-bind", default="", help="address of the TLS listener (default: all)")
    parser.add_argument("--no-ca", action="store_true", help="no local CA and no TLS listener")
    parser.add_argument(
        "--hostname",
        action="append",
        default=[],
        help="name or address nodes use for the broker (repeatable)",
    )
    parser.add_argument(
        "--require-client-certs", action="store_true", help="TLS clients need a site certificate"
    )
    parser.add_argument("--nodes", type=int, default=50, help="nodes the queues are sized for (default 50)")
    parser.add_argument("--interval-s", type=int, default=60, help="the nodes' reading interval (default 60)")
    parser.add_argument("--run-as", default="mosquitto", help="user Mosquitto runs as (default mosquitto)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        return _run(args)
    except BrokerError as exc:  # mosquitto_passwd missing or failing, or the broker not ours to signal
        print(f"minewatch-gateway broker-config: {exc}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    layout = BrokerLayout(args.out or cfg.data_dir / "broker")
    layout.root.mkdir(parents=True, exist_ok=True)
    (layout.root / "persist").mkdir(exist_ok=True)
    gateway_user = cfg.mqtt.username or DEFAULT_MQTT_USER
    ensure_passwd(layout)
    if not args.no_ca:
        hosts = args.hostname or [socket.getfqdn(), "localhost", "127.0.0.1"]
        from gateway.trust import ca  # here: cryptography's X.509 costs every gateway process ~7 MB

        if ca.ensure_ca(layout.ca_dir, cfg.gateway_id):
            print(f"created the site CA {layout.ca_dir / 'ca.crt'} (give it to every node and monitor)")
        if ca.issue(
            layout.ca_dir, layout.ca_dir / "server.crt", layout.ca_dir / "server.key", hosts[0], hosts=hosts
        ):
            print(f"issued the broker's certificate for {', '.join(hosts)}")
    conf = render_conf(
        layout,
        port=args.port,
        tls_port=None if args.no_ca else args.tls_port,
        tls_bind=args.tls_bind,
        sizing=QueueSizing(args.nodes, args.interval_s),
        run_as=args.run_as,
        require_client_certs=args.require_client_certs,
    )
    layout.conf.write_text(conf)
    # the gateway's own account: its password goes next to the broker files, never into gateway.toml
    for line in provision_account(gateway_user, layout.root, layout).changed:
        print(line)
    write_acl(layout, prefix=cfg.topic_prefix, gateway_user=gateway_user)
    _hand_to(args.run_as, layout)
    print(f"wrote {layout.conf}; start it with: mosquitto -c {layout.conf}")
    print(
        f'gateway.toml [mqtt]: username = "{gateway_user}", '
        f'password_file = "{layout.root / (gateway_user + ".password")}"'
    )
    pid = reload_broker(layout.pid_file)
    if pid:
        print(f"told Mosquitto (pid {pid}) to reload")
    return 0


def _hand_to(user: str, layout: BrokerLayout) -> None:
    """Mosquitto drops root before reading the password file, ACL and server key: let it read them."""
    if os.geteuid() != 0 or user in ("root", getpass.getuser()):
        return
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        print(f"warning: no user {user!r}: give Mosquitto's user read access to {layout.root}")
        return
    for path in [layout.passwd, layout.acl, layout.root / "persist", layout.ca_dir / "server.key"]:
        if path.exists():
            os.chown(path, entry.pw_uid, entry.pw_gid)
