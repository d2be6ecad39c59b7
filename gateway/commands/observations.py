"""`minewatch-gateway observations list|accept|reject`: a monitor's moderation of what residents
submitted. Nothing is public until accepted; every decision is a new record (who, when, why), and a
later decision replaces an earlier one only as the current state, never in the record.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from contract.clock import Clock, utc_now
from contract.configfile import ConfigError
from gateway.config import load
from gateway.observations.store import STORE_FILE, ObservationStore
from gateway.timerange import format_time


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "observations", help="list residents' observations, accept or reject them"
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    show = verbs.add_parser("list", help="list observations (all, or one state)")
    show.add_argument("--config", required=True, help="path to gateway.toml")
    show.add_argument("--state", choices=["pending", "accepted", "rejected"])
    show.add_argument("--json", action="store_true", help="one JSON object a line, with its decisions")
    show.set_defaults(func=run_list)
    for verb, decision in (("accept", "accepted"), ("reject", "rejected")):
        one = verbs.add_parser(verb, help=f"{verb} one observation (recorded with who and why)")
        one.add_argument("id", help="the observation's id, as `list` shows it")
        one.add_argument("--config", required=True, help="path to gateway.toml")
        one.add_argument("--by", required=True, help="the monitor deciding")
        one.add_argument("--why", required=True, help="the reason, kept with the decision")
        one.set_defaults(func=run_decide, decision=decision)


def run_list(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    store = ObservationStore(cfg.data_dir / STORE_FILE)
    try:
        for o in store.listed(args.state):
            if args.json:
                doc = {
                    "id": o.id,
                    "observer": o.observer,
                    "kind": o.kind,
                    "text": o.text,
                    "at": format_time(o.at),
                    "site": o.site,
                    "node": o.node,
                    "lat": o.lat,
                    "lon": o.lon,
                    "received": format_time(o.received),
                    "photo_received_sha256": o.photo_received_sha256,
                    "photo_sha256": o.photo_sha256,
                    "state": o.state,
                    "decisions": [
                        {"decision": d.decision, "by": d.by, "at": format_time(d.at), "why": d.why}
                        for d in store.decisions(o.id)
                    ],
                }
                print(json.dumps(doc, ensure_ascii=False))
            else:
                where = o.node or (
                    f"{o.lat:.5f},{o.lon:.5f}" if o.lat is not None and o.lon is not None else "—"
                )
                photo = "  photo" if o.photo_sha256 else ""
                print(f"{o.id}  {format_time(o.at)}  {o.kind}  at {where}  {o.state}{photo}  {o.text!r}")
    finally:
        store.close()
    return 0


def run_decide(args: argparse.Namespace, clock: Clock = utc_now) -> int:
    cfg = load(args.config)
    for what, text in (("--by", args.by), ("--why", args.why)):
        if not text.strip() or len(text) > 500 or not text.isprintable():
            raise ConfigError(f"{what} must be 1 to 500 printable characters")
    store = ObservationStore(cfg.data_dir / STORE_FILE)
    try:
        try:
            record = store.decide(args.id, args.decision, args.by.strip(), args.why.strip(), clock())
        except KeyError:
            raise ConfigError(f"no observation {args.id!r}; see `observations list`") from None
    finally:
        store.close()
    print(f"{record.observation}: {record.decision} by {record.by} at {format_time(record.at)}")
    return 0
