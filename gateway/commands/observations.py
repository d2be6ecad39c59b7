"""`minewatch-gateway observations list|accept|reject|migrate`: a monitor's moderation of what
residents submitted, from a shell. Nothing is public until accepted; every decision is a new point
in InfluxDB (who, when, why), and a later decision replaces an earlier one only as the current
state, never in the record. `migrate` copies the observations a gateway kept in SQLite before they
moved to InfluxDB (gateway/observations/store.py); it may be run again: what is there is not
written twice, and the SQLite file is left as it was.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from contract.clock import Clock, utc_now
from contract.configfile import ConfigError
from gateway.config import GatewayConfig, load
from gateway.observations import records
from gateway.observations.migrate import migrate
from gateway.observations.records import PHOTOS_DIR, AlreadyDecided, FieldRecords, Observation
from gateway.observations.store import STORE_FILE, ObservationStore
from gateway.stores import open_store, reader_for
from gateway.stores.base import API_FILE
from gateway.timerange import format_time


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "observations", help="list residents' observations, accept or reject them"
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    show = verbs.add_parser("list", help="list observations (all, or one state)")
    show.add_argument("--config", required=True, help="path to gateway.toml")
    show.add_argument("--state", choices=["pending", "accepted", "rejected"])
    show.add_argument(
        "--json", action="store_true", help="one JSON object a line, with its decisions, times in UTC"
    )
    show.set_defaults(func=run_list)
    for verb, decision in (("accept", "accepted"), ("reject", "rejected")):
        one = verbs.add_parser(verb, help=f"{verb} one observation (recorded with who and why)")
        one.add_argument("id", help="the observation's id, as `list` shows it")
        one.add_argument("--config", required=True, help="path to gateway.toml")
        one.add_argument("--by", required=True, help="the monitor deciding")
        one.add_argument("--why", required=True, help="the reason, kept with the decision")
        one.set_defaults(func=run_decide, decision=decision)
    move = verbs.add_parser(
        "migrate", help="copy the observations and decisions kept in SQLite before into InfluxDB"
    )
    move.add_argument("--config", required=True, help="path to gateway.toml")
    move.set_defaults(func=run_migrate)


def _records(cfg: GatewayConfig) -> FieldRecords:
    store = open_store(cfg.influxdb, remember=cfg.data_dir / API_FILE)
    return FieldRecords(store, reader_for(store, cfg.influxdb), cfg.data_dir / PHOTOS_DIR)


def doc_of(o: Observation, decided: list[records.DecisionRecord]) -> dict[str, Any]:
    return {
        "id": o.id,
        "observer": o.observer,
        "kind": o.kind,
        "text": o.text,
        "at": format_time(o.at),
        "site": o.site,
        "node": o.node,
        "place": o.place,
        "lat": o.lat,
        "lon": o.lon,
        "received": format_time(o.received),
        "photo_received_sha256": o.photo_received_sha256,
        "photo_sha256": o.photo_sha256,
        "photos_received_sha256": list(o.photos_received_sha256),
        "photos_sha256": list(o.photos_sha256),
        "state": o.state,
        "decisions": [
            {"decision": d.decision, "by": d.by, "at": format_time(d.at), "why": d.why} for d in decided
        ],
    }


def run_list(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    field = _records(cfg)
    try:
        found = records.listed(field.reader, args.state)
        decided = records.decisions_of(field.reader, [o.id for o in found]) if args.json and found else {}
    finally:
        field.close()
    t = cfg.site.texts()  # times in the site's zone (`[site] timezone`); --json keeps UTC
    for o in found:
        if args.json:
            print(json.dumps(doc_of(o, decided.get(o.id, [])), ensure_ascii=False))
            continue
        where = o.node or (f"{o.lat:.5f},{o.lon:.5f}" if o.lat is not None and o.lon is not None else "—")
        count = len(o.photos_sha256)
        photo = "" if not count else "  photo" if count == 1 else f"  {count} photos"
        # the sender ("code:3": `observers list`, `observers revoke --id 3`), for the operator only
        print(f"{o.id}  {t.time(o.at)}  {o.kind}  at {where}  {o.state}{photo}  by {o.observer}  {o.text!r}")
    return 0


def run_decide(args: argparse.Namespace, clock: Clock = utc_now) -> int:
    cfg = load(args.config)
    for what, text in (("--by", args.by), ("--why", args.why)):
        if not text.strip() or len(text) > 500 or not text.isprintable():
            raise ConfigError(f"{what} must be 1 to 500 printable characters")
    field = _records(cfg)
    try:
        record = field.decide(args.id, args.decision, args.by.strip(), args.why.strip(), clock())
    except KeyError:
        raise ConfigError(f"no observation {args.id!r}; see `observations list`") from None
    except AlreadyDecided as exc:
        raise ConfigError(str(exc)) from None
    finally:
        field.close()
    at = cfg.site.texts().time(record.at)
    print(f"{record.observation}: {record.decision} by {record.by} at {at}")
    return 0


def run_migrate(args: argparse.Namespace) -> int:
    """Each observation not yet in InfluxDB is written, then each of its decisions not yet there;
    the photos are already files named by hash in the same directory. Counted and printed, so an
    operator can compare with `observations list`."""
    cfg = load(args.config)
    path = cfg.data_dir / STORE_FILE
    if not path.exists():
        print(f"nothing to migrate: no {path}")
        return 0
    old = ObservationStore(path)
    field = _records(cfg)
    try:
        done = migrate(old, field)
    finally:
        field.close()
        old.close()
    print(
        f"migrated {done.observations} observations and {done.decisions} decisions from {path} into "
        f"InfluxDB; {done.kept - done.observations} were there already. {path} is left as it was."
    )
    return 0
