"""`minewatch-gateway maintenance add|list`: record a visit to a node, and list the visits.

A visit goes into InfluxDB beside the readings (measurement `maintenance`, docs/protocol.md)
through the write seam; its marked window (`--flag-from`, `--flag-to`) marks the readings stamped
in it wherever they are read (export, report, dashboard, SensorThings), and no reading is rewritten.
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from typing import Any

from contract.clock import Clock, utc_now
from gateway import maintenance
from gateway import timerange as q
from gateway.config import load
from gateway.stores import open_reader, open_store
from gateway.stores.backends import reader_for
from gateway.stores.base import API_FILE


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "maintenance",
        help="record a maintenance visit to a node, or list the visits",
        description="Visits (cleaned, moved, replaced, calibrated, inspected) are stored beside the "
        "readings; a visit may mark the readings of a window around it, which then show as "
        "`maintenance` in the export, the report and the dashboard. Nothing stored is changed.",
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    one = verbs.add_parser("add", help="record one visit")
    one.add_argument("--config", required=True, help="path to gateway.toml")
    one.add_argument("--node", required=True)
    one.add_argument("--site", help="the node's site (default: the site of its latest reading)")
    one.add_argument("--kind", required=True, choices=maintenance.KINDS)
    one.add_argument("--at", required=True, help="when, UTC: e.g. 2026-11-02T10:30Z")
    one.add_argument("--by", required=True, help="who made the visit")
    one.add_argument("--note", default="", help=f"free text, at most {maintenance.NOTE_MAX} characters")
    one.add_argument("--flag-from", help="mark the readings stamped after this time...")
    one.add_argument("--flag-to", help="...up to and including this time")
    one.set_defaults(func=run_add)
    many = verbs.add_parser("list", help="list the visits of a site")
    many.add_argument("--config", required=True, help="path to gateway.toml")
    many.add_argument("--site", required=True)
    many.add_argument("--node", action="append", default=[], help="only this node (repeatable)")
    many.add_argument("--start", default="2000-01-01", help="UTC date or time (default: all)")
    many.add_argument("--end", help="UTC date or time (default: now)")
    many.add_argument("--json", action="store_true", help="one JSON object a line, times in UTC")
    many.set_defaults(func=run_list)


def _time(text: str | None, what: str) -> datetime | None:
    return None if text is None else q.parse_time(text, what)


def run_add(args: argparse.Namespace, clock: Clock = utc_now) -> int:
    cfg = load(args.config)
    now = clock()
    at = q.parse_time(args.at, "--at")
    q.check_ids(args.site or "any", [args.node])  # the site too, when given
    visit = maintenance.Visit(
        site=args.site or "",
        node=args.node,
        kind=args.kind,
        at=at,
        by=args.by,
        note=args.note,
        flag_from=_time(args.flag_from, "--flag-from"),
        flag_to=_time(args.flag_to, "--flag-to"),
        recorded=now,
    )
    maintenance.check(visit, now)  # before anything connects
    store = open_store(cfg.influxdb, remember=cfg.data_dir / API_FILE)
    reader = reader_for(store, cfg.influxdb)
    try:
        if not visit.site:
            sites = {r.site for r in reader.latest(now, node=visit.node)}
            if len(sites) != 1:
                found = f"it is at {', '.join(sorted(sites))}" if sites else "it has no readings"
                raise q.QueryArgumentError(f"give --site for node {visit.node!r}: {found}")
            visit = maintenance.Visit(**{**_fields(visit), "site": sites.pop()})
        maintenance.record(store, reader, visit)
    finally:
        reader.close()
        store.close()
    when = cfg.site.texts().time(visit.at, seconds=True)  # as `list` shows it: in the site's zone
    print(f"recorded: {visit.kind} at {visit.site}/{visit.node}, {when}, by {visit.by}")
    return 0


def _fields(visit: maintenance.Visit) -> dict[str, Any]:
    return {name: getattr(visit, name) for name in visit.__slots__}


def run_list(args: argparse.Namespace, clock: Clock = utc_now) -> int:
    cfg = load(args.config)
    start = q.parse_time(args.start, "--start")
    end = _time(args.end, "--end") or clock()
    q.check_range(start, end)
    q.check_ids(args.site, args.node)
    reader = open_reader(cfg.influxdb)
    try:
        found = maintenance.visits(reader, args.site, start, end, args.node)
    finally:
        reader.close()
    t = cfg.site.texts()  # times in the site's zone (`[site] timezone`); --json keeps UTC
    for v in found:
        if args.json:
            print(json.dumps(v.to_json(), ensure_ascii=False))
            continue
        marked = ""
        if v.flag_from and v.flag_to:
            marked = f"  marks ({t.time(v.flag_from, seconds=True)}, {t.time(v.flag_to, seconds=True)}]"
        note = f"  {v.note}" if v.note else ""
        print(f"{t.time(v.at, seconds=True)}  {v.node}  {v.kind}  by {v.by}{marked}{note}")
    if not found and not args.json:
        print("no maintenance visits recorded")
    return 0
