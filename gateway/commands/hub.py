"""`minewatch-gateway hub ...`: the regional hub (docs/region.md).

On the hub: `init` makes the schema, `jurisdiction` and `site` register who takes part,
`agreement` records what one jurisdiction shares with another, `run` takes forwarded batches.
On a site: `identity` makes the site's identity key, whose public half the hub's operator
registers with `site --identity-key`.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path
from types import FrameType
from typing import Any

from contract.configfile import ConfigError
from contract.signing import Signer, public_b64
from gateway.hub import read_cli
from gateway.timerange import parse_time

log = logging.getLogger("minewatch.hub")


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser("hub", help="the regional hub, and joining one")
    hub = parser.add_subparsers(dest="hub_command", required=True)

    p = hub.add_parser("identity", help="make this site's identity key; prints its public half")
    p.add_argument("--out", required=True, type=Path, help="where to write the private key (PEM)")
    p.set_defaults(func=_identity)

    p = hub.add_parser("init", help="create or update the hub's schema")
    p.add_argument("--config", required=True, help="path to hub.toml")
    p.set_defaults(func=_init)

    p = hub.add_parser("jurisdiction", help="register a jurisdiction and its database role")
    p.add_argument("--config", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--role", required=True, help="PostgreSQL role its readers connect as (or are granted)")
    p.set_defaults(func=_jurisdiction)

    p = hub.add_parser("site", help="register a site of a jurisdiction with the site's identity key")
    p.add_argument("--config", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--jurisdiction", required=True)
    p.add_argument("--identity-key", required=True, help="what `hub identity` printed on the site")
    p.add_argument("--name", default="")
    p.set_defaults(func=_site)

    p = hub.add_parser("agreement", help="record (a new version of) a sharing agreement")
    p.add_argument("--config", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--grantor", required=True)
    p.add_argument("--grantee", required=True)
    p.add_argument("--sites", required=True, help="comma-separated site ids")
    p.add_argument("--licence", required=True)
    p.add_argument("--from", dest="valid_from", required=True, help="ISO 8601 time (UTC if bare)")
    p.add_argument("--to", dest="valid_to", help="ISO 8601 time; open-ended if absent")
    p.add_argument("--delay", type=int, default=0, help="seconds before a reading becomes visible")
    p.add_argument("--metrics", help="comma-separated metrics shared (default: every metric)")
    p.add_argument(
        "--form", choices=["raw", "hourly"], default="raw",
        help="raw: the readings; hourly: only hourly means, counts, minima and maxima (default raw)",
    )  # fmt: skip
    p.add_argument("--by", required=True, help="who records it")
    p.set_defaults(func=_agreement)

    p = hub.add_parser("broker-config", help="write the hub's Mosquitto configuration, ACL and CA")
    p.add_argument("--config", required=True, help="path to hub.toml (topic_prefix, [mqtt] username)")
    p.add_argument("--out", required=True, type=Path, help="directory for the broker's files")
    p.add_argument("--port", type=int, default=1883, help="loopback listener, for the hub (default 1883)")
    p.add_argument("--tls-port", type=int, default=8883, help="TLS listener, for the sites (default 8883)")
    p.add_argument("--hostname", action="append", default=[], help="name sites use for the hub (repeatable)")
    p.add_argument("--run-as", default="mosquitto", help="user Mosquitto runs as (default mosquitto)")
    p.set_defaults(func=_broker_config)

    p = hub.add_parser("site-account", help="a site's MQTT account at the hub (password in --broker)")
    p.add_argument("--config", required=True)
    p.add_argument("--broker", required=True, type=Path, help="the directory `hub broker-config` wrote")
    p.add_argument("--site", required=True)
    p.set_defaults(func=_site_account)

    p = hub.add_parser("contact", help="who to warn in a jurisdiction, in order (rank 1 first)")
    p.add_argument("--config", required=True)
    p.add_argument("--jurisdiction", required=True)
    p.add_argument("--rank", type=int, required=True, help="1 is warned first; the next on no confirmation")
    p.add_argument("--name", required=True)
    p.add_argument(
        "--channel", required=True,
        help="an [[alerts.channels]] table as JSON, e.g. "
        '\'{"type": "webhook", "url": "https://...", "language": "mn"}\'',
    )  # fmt: skip
    p.set_defaults(func=_contact)

    p = hub.add_parser("warn-rule", help="a site's rule whose alerts warn a neighbouring jurisdiction")
    p.add_argument("--config", required=True)
    p.add_argument("--site", required=True)
    p.add_argument("--rule", required=True, help="the rule's name in the site's [[alerts.rules]]")
    p.add_argument("--neighbour", required=True, help="the jurisdiction to warn")
    p.add_argument("--escalate-after", type=int, default=1800, help="seconds without confirmation (1800)")
    p.set_defaults(func=_warn_rule)

    p = hub.add_parser("warning", help="list warnings, confirm receipt of one, or show its record")
    p.add_argument("action", choices=["list", "confirm", "log"])
    p.add_argument("--config", required=True)
    p.add_argument("--id", type=int, help="the warning (confirm, log)")
    p.add_argument("--by", help="who confirms receipt (confirm)")
    p.set_defaults(func=_warning)

    p = hub.add_parser("run", help="take forwarded batches until stopped")
    p.add_argument("--config", required=True)
    p.set_defaults(func=_run)

    read_cli.add(hub)  # serve, token, tokens, revoke-token, export, report, evidence


def _broker_config(args: argparse.Namespace) -> int:
    import socket

    from gateway.hub.broker import HUB_USER, write_hub_acl
    from gateway.hub.config import load
    from gateway.trust import ca
    from gateway.trust.broker import BrokerLayout, QueueSizing, ensure_passwd, render_conf
    from gateway.trust.provision import provision_account

    cfg = load(args.config)
    layout = BrokerLayout(args.out)
    layout.root.mkdir(parents=True, exist_ok=True)
    (layout.root / "persist").mkdir(exist_ok=True)
    ensure_passwd(layout)
    hosts = args.hostname or [socket.getfqdn(), "localhost", "127.0.0.1"]
    ca.ensure_ca(layout.ca_dir, "minewatch-hub")
    ca.issue(layout.ca_dir, layout.ca_dir / "server.crt", layout.ca_dir / "server.key", hosts[0], hosts=hosts)
    # a week of batches from 100 sites (a batch a second each) survives a slow or absent hub
    sizing = QueueSizing(nodes=100, interval_s=1)
    layout.conf.write_text(
        render_conf(layout, port=args.port, tls_port=args.tls_port, sizing=sizing, run_as=args.run_as)
    )
    hub_user = cfg.mqtt.username or HUB_USER
    for line in provision_account(hub_user, layout.root, layout).changed:
        print(line)
    write_hub_acl(layout, prefix=cfg.topic_prefix, hub_user=hub_user)
    print(f"wrote {layout.conf}; give {layout.ca_dir / 'ca.crt'} to every site")
    return 0


def _site_account(args: argparse.Namespace) -> int:
    from contract.wire import is_identifier
    from gateway.hub.broker import HUB_USER, write_hub_acl
    from gateway.hub.config import load
    from gateway.trust.broker import BrokerLayout, reload_broker
    from gateway.trust.provision import provision_account

    if not is_identifier(args.site):
        raise ConfigError(f"--site {args.site!r} is not a site id")
    cfg = load(args.config)
    layout = BrokerLayout(args.broker)
    for line in provision_account(args.site, layout.root, layout).changed:
        print(line)
    write_hub_acl(layout, prefix=cfg.topic_prefix, hub_user=cfg.mqtt.username or HUB_USER)
    reload_broker(layout.pid_file)
    password, cafile = layout.root / f"{args.site}.password", layout.ca_dir / "ca.crt"
    print(
        f'the site\'s [forward.mqtt]: username = "{args.site}", password_file = <copy of {password}>, '
        f"tls = true, ca_file = <copy of {cafile}>"
    )
    return 0


def _identity(args: argparse.Namespace) -> int:
    path: Path = args.out
    if path.exists():
        raise ConfigError(f"{path} exists: a site keeps its identity; remove it first to make a new one")
    signer = Signer.generate()
    signer.write(path)
    print(public_b64(signer.private.public_key()))
    return 0


def _store(args: argparse.Namespace) -> Any:
    from gateway.hub.config import load
    from gateway.stores.postgres_hub import HubStore

    return HubStore(load(args.config).database.conninfo())


def _init(args: argparse.Namespace) -> int:
    store = _store(args)
    store.prepare()
    store.close()
    print("hub schema ready")
    return 0


def _jurisdiction(args: argparse.Namespace) -> int:
    store = _store(args)
    store.add_jurisdiction(args.id, args.name, args.role)
    store.close()
    return 0


def _site(args: argparse.Namespace) -> int:
    from contract.signing import public_from_b64

    try:
        public_from_b64(args.identity_key)
    except ValueError:
        raise ConfigError("--identity-key: not the base64 public key `hub identity` prints") from None
    store = _store(args)
    store.add_site(args.id, args.jurisdiction, args.identity_key, args.name)
    store.close()
    return 0


def _agreement(args: argparse.Namespace) -> int:
    from contract.metrics import Metric

    metrics = None
    if args.metrics is not None:
        metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
        unknown = [m for m in metrics if m not in {x.value for x in Metric}]
        if unknown or not metrics:
            known = ", ".join(x.value for x in Metric)
            raise ConfigError(f"--metrics: {', '.join(unknown) or 'none given'} (metrics: {known})")
    store = _store(args)
    version = store.add_agreement(
        name=args.name, grantor=args.grantor, grantee=args.grantee,
        sites=[s.strip() for s in args.sites.split(",") if s.strip()], licence=args.licence,
        valid_from=parse_time(args.valid_from, "--from"),
        valid_to=parse_time(args.valid_to, "--to") if args.valid_to else None,
        delay_s=args.delay, recorded_by=args.by, metrics=metrics, form=args.form,
    )  # fmt: skip
    store.close()
    print(f"agreement {args.name} version {version} recorded")
    return 0


def _contact(args: argparse.Namespace) -> int:
    import json

    from pydantic import ValidationError

    from gateway.hub.warnings import channel_options

    try:
        table = json.loads(args.channel)
        channel_options(table)
    except (ValueError, ValidationError) as exc:
        raise ConfigError(f"--channel: not a channel table: {str(exc).splitlines()[0]}") from None
    store = _store(args)
    store.add_contact(args.jurisdiction, args.rank, args.name, table)
    store.close()
    return 0


def _warn_rule(args: argparse.Namespace) -> int:
    store = _store(args)
    store.add_warning_rule(args.site, args.rule, args.neighbour, args.escalate_after)
    store.close()
    return 0


def _warning(args: argparse.Namespace) -> int:
    from contract.clock import utc_now

    store = _store(args)
    try:
        if args.action == "list":
            for w in store.warnings():
                state = (
                    "ended"
                    if w["ended"]
                    else ("confirmed by " + str(w["confirmed_by"]))
                    if w["confirmed"]
                    else "open"
                )
                print(
                    f"{w['id']}\t{w['alert_id']}\tto {w['neighbour']}\t{state}\tcontact {w['contact_rank']}"
                )
            return 0
        if args.id is None:
            raise ConfigError(f"warning {args.action}: --id is required")
        if args.action == "confirm":
            if not args.by:
                raise ConfigError("warning confirm: --by is required (who confirms receipt)")
            if not store.confirm_warning(args.id, args.by, utc_now()):
                raise ConfigError(f"warning {args.id}: no such warning, or already confirmed")
            print(f"warning {args.id} confirmed by {args.by}")
            return 0
        for at, what, contact, who, detail in store.warning_log(args.id):
            print(f"{at.isoformat()}\t{what}\t{contact or ''}\t{who or ''}\t{detail}")
        return 0
    finally:
        store.close()


def _run(args: argparse.Namespace) -> int:
    from gateway.hub.config import load
    from gateway.hub.service import HubService

    service = HubService(load(args.config))

    def stop(signum: int, frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        service.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    service.run()
    return 0
