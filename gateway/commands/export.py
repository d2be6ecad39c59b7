"""`minewatch-gateway export`: readings or period means of one site to CSV or JSON Lines."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contract.i18n import Texts
from contract.metrics import Metric
from gateway import dataset, export, maintenance
from gateway import timerange as q
from gateway.config import load
from gateway.exports import write as exchange
from gateway.exports.registry import FORMATS
from gateway.observations import records
from gateway.stores import open_reader
from gateway.stores.reader import Reader


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "export",
        help="write a site's readings (or 1-h / 24-h means) to CSV or JSON Lines",
        description="Every stored reading of a site in (start, end], with raw and calibrated values, "
        "calibration ids, flags, seq and signatures, one row per reading, UTC times. Columns are "
        "described in <out>.columns.json and docs/regulators.md.",
    )
    parser.add_argument("--config", required=True, help="path to gateway.toml (for [influxdb])")
    parser.add_argument("--site", required=True)
    parser.add_argument("--node", action="append", default=[], help="only this node (repeatable)")
    parser.add_argument(
        "--start", required=True, help="UTC date or time, e.g. 2026-11-01 or 2026-11-01T06:00Z"
    )
    parser.add_argument("--end", required=True, help="UTC date or time (inclusive of a reading ending then)")
    parser.add_argument("--metrics", help="comma-separated, e.g. pm2_5,turbidity (default: all stored)")
    parser.add_argument("--format", choices=["csv", "jsonl", *FORMATS], default="csv")
    parser.add_argument("--out", type=Path, help="output file (default: standard output)")
    parser.add_argument("--average", choices=sorted(export.PERIODS), help="period means with completeness")
    parser.add_argument(
        "--interval-s", type=int, help="readings' interval for completeness (default: inferred per node)"
    )
    parser.set_defaults(func=run)


def parse_metrics(text: str | None) -> list[Metric] | None:
    if not text:
        return None
    known = {m.value: m for m in Metric}
    out = []
    for name in (part.strip() for part in text.split(",")):
        if name not in known:
            raise q.QueryArgumentError(f"--metrics: unknown metric {name!r}; known: {', '.join(known)}")
        out.append(known[name])
    return out


def request(args: argparse.Namespace) -> export.ExportRequest:
    """Every argument checked before anything connects; `metrics` is empty when not given."""
    start, end = q.parse_time(args.start, "--start"), q.parse_time(args.end, "--end")
    q.check_range(start, end)
    q.check_ids(args.site, args.node)
    if args.interval_s is not None and args.interval_s < 1:
        raise q.QueryArgumentError("--interval-s must be at least 1")
    return export.ExportRequest(
        site=args.site,
        nodes=list(args.node),
        start=start,
        end=end,
        metrics=parse_metrics(args.metrics) or [],
        average=args.average,
        interval_s=args.interval_s,
    )


def run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    req = request(args)
    reader = open_reader(cfg.influxdb)
    check_known(reader, req)
    if args.format in FORMATS:  # an exchange format (gateway/exports/): its own rows and checks
        return exchange.run(
            args.format,
            cfg,
            Path(args.config),
            reader,
            req,
            args.out,
            field_records(reader, req) if args.out is not None else None,
        )
    if not req.metrics:  # every metric stored: what a signature covers, so `verify` can re-check rows
        req = dataclasses.replace(req, metrics=dataset.metrics_stored(reader) or [Metric.PM2_5])
    with ExitStack() as stack:
        out = sys.stdout
        if args.out is not None:
            out = stack.enter_context(args.out.open("w", encoding="utf-8", newline=""))
        progress = _progress_bar(req, stack) if sys.stderr.isatty() and not req.average else None
        queries: list[str] = []
        rows = export.write(reader, req, out, args.format, progress, queries.append)
    if args.out is not None:
        meta = export.sidecar(req, args.format, rows, datetime.now(UTC), queries[0])
        meta.update(field_records(reader, req))
        side = args.out.with_name(args.out.name + ".columns.json")
        side.write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        key = "export_cli.written_one" if rows == 1 else "export_cli.written_other"
        print(Texts()(key, n=rows, out=args.out, side=side), file=sys.stderr)
    reader.close()
    return 0


def field_records(reader: Reader, req: export.ExportRequest) -> dict[str, Any]:
    """What a side file lists beside the rows, in every format: the visits made in the period or
    marking readings in it (the `maintenance` column marks their readings) and what residents saw,
    as monitors accepted it (docs/protocol.md, "Exports")."""
    visits = maintenance.of_period(reader, req.site, req.start, req.end, req.nodes)
    seen = records.listed(reader, "accepted", req.start, req.end, site=req.site, nodes=req.nodes)
    return {
        "maintenance_visits": [v.to_json() for v in visits],
        "observations": [o.to_json() for o in seen],
    }


def check_known(reader: Reader, req: export.ExportRequest) -> None:
    """An unknown site or node is a mistake to say, not an empty file to write (exit 2)."""
    texts = Texts()
    known_nodes = reader.nodes()  # the database's index of series: no data read, at a day or a year
    sites = sorted({s for s, _ in known_nodes})
    if req.site not in sites:
        known = ", ".join(sites) or texts("verify_cli.none")
        raise q.QueryArgumentError(texts("export_cli.unknown_site", site=req.site, known=known))
    nodes = sorted({n for s, n in known_nodes if s == req.site})
    for node in req.nodes:
        if node not in nodes:
            raise q.QueryArgumentError(
                texts("export_cli.unknown_node", node=node, site=req.site, known=", ".join(nodes))
            )


def _progress_bar(req: export.ExportRequest, stack: ExitStack) -> Any:
    """A bar over the time range (rows arrive in time order), on stderr, only on a terminal."""
    from tqdm import tqdm

    total = int((req.end - req.start).total_seconds())
    bar = stack.enter_context(tqdm(total=total, unit="s", desc="export", file=sys.stderr, unit_scale=True))
    done = [0]

    def advance(ts: str) -> None:
        at = min(total, int((q.parse_time(ts, "time") - req.start).total_seconds()))
        if at > done[0]:
            bar.update(at - done[0])
            done[0] = at

    return advance
