"""`minewatch-gateway report`: a printable HTML (and PDF) report of a site for regulators."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from typing import Any

from contract.clock import Clock, utc_now
from contract.i18n import Texts
from gateway import timerange as q
from gateway.commands.export import parse_metrics
from gateway.config import GatewayConfig, load
from gateway.report.model import About, KeyInfo
from gateway.standards import STANDARDS
from gateway.stores import open_reader
from gateway.trust import registry


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "report",
        help="write a self-contained HTML report (completeness, daily means against limits, "
        "exceedances, provenance, the queries behind each table)",
    )
    parser.add_argument("--config", required=True, help="path to gateway.toml (for [influxdb], [report])")
    parser.add_argument("--site", required=True)
    parser.add_argument("--node", action="append", default=[], help="only this node (repeatable)")
    parser.add_argument("--start", required=True, help="UTC date or time, e.g. 2026-11-01")
    parser.add_argument("--end", required=True, help="UTC date or time, e.g. 2026-12-01")
    parser.add_argument("--out", type=Path, required=True, help="the HTML file to write")
    parser.add_argument(
        "--pdf",
        nargs="?",
        type=Path,
        const=True,
        help="also write a PDF (default name: --out with .pdf); needs the `report` extra",
    )
    parser.add_argument(
        "--standard",
        action="append",
        choices=sorted(STANDARDS),
        help="compare with this standard's limits (repeatable; default: [report] standards, or all)",
    )
    parser.add_argument("--metrics", help="comma-separated (default: pm2_5, pm10, turbidity if stored)")
    parser.add_argument(
        "--calibrations",
        type=Path,
        help="directory of the network's calibration files (*.toml): their fit statistics go in the report",
    )
    parser.add_argument("--interval-s", type=int, help="readings' interval (default: inferred per node)")
    parser.add_argument(
        "--lang", help="language of the report (contract/i18n/<lang>.toml); default: [web] language, or en"
    )
    parser.set_defaults(func=run)


def _check_extra(modules: list[str]) -> None:
    """Say before querying anything that the optional `report` extra is missing (the node never has it)."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        raise q.QueryArgumentError(
            f"the report needs the `report` extra ({', '.join(missing)} missing): "
            "pip install 'minewatch[report]'"
        )


def _about(cfg: GatewayConfig) -> About:
    """Who produces the report, and what the gateway knows of the nodes: the config's node notes
    and the trust registry's keys (their fingerprints, status and validity)."""
    keys = tuple(
        KeyInfo(r.kid, r.site, r.node, str(r.status), r.created, r.since)
        for r in sorted(registry.load_dir(cfg.keys_dir).values(), key=lambda r: (r.node, r.created))
    )
    return About(cfg.report.operator, cfg.gateway_id, tuple(cfg.report.nodes), keys)


def run(args: argparse.Namespace, clock: Clock = utc_now) -> int:
    cfg = load(args.config)
    start, end = q.parse_time(args.start, "--start"), q.parse_time(args.end, "--end")
    q.check_range(start, end)
    q.check_ids(args.site, args.node)
    metrics = parse_metrics(args.metrics)
    if args.calibrations is not None and not args.calibrations.is_dir():
        raise q.QueryArgumentError(f"--calibrations {args.calibrations}: not a directory")
    if args.interval_s is not None and args.interval_s < 1:
        raise q.QueryArgumentError("--interval-s must be at least 1")
    language = getattr(args, "lang", None) or (cfg.web.language if cfg.web else "en")
    if not Texts.exists(language):
        raise q.QueryArgumentError(
            f"--lang: no translation {language}.toml; have: {', '.join(Texts.languages())}"
        )
    _check_extra(["matplotlib", "PIL", "jinja2"] + (["weasyprint", "pypdf"] if args.pdf else []))
    from gateway.report import data, render  # only now: matplotlib, Pillow and jinja2 are optional extras

    reader = open_reader(cfg.influxdb)
    report = data.collect(
        reader,
        site=args.site,
        start=start,
        end=end,
        generated=clock(),
        about=_about(cfg),
        standards=args.standard or cfg.report.standards,
        metrics=metrics,
        nodes=args.node,
        interval_s=args.interval_s,
        calibrations_dir=args.calibrations,
    )
    reader.close()
    t = cfg.site.texts(language)
    # the plots drawn in a child process, which exits before the PDF is laid out: matplotlib's
    # memory and WeasyPrint's are not added together (docs/operations.md, a year of data)
    drawn = render.plots(report, t, apart=True)
    render.write_html(args.out, report, t, drawn=drawn)
    print(f"report written to {args.out}", file=sys.stderr)
    if args.pdf:
        pdf_path = args.out.with_suffix(".pdf") if args.pdf is True else args.pdf
        render.pdf(report, pdf_path, drawn, t)
        print(f"PDF written to {pdf_path}", file=sys.stderr)
    return 0
