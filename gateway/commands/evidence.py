"""`minewatch-gateway evidence`: one zip with everything a regulator needs to check a period alone.

Readings as exported (with the columns description), the public keys with their validity, the
calibration files in force, the alert events, the report (HTML and PDF), the one-file checker and
a manifest with the SHA-256 of every file; `--tsa URL` has the manifest time-stamped (RFC 3161).
Check it with `minewatch-gateway verify --bundle FILE` or `python verify_offline.py --bundle FILE`.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from contract.configfile import build_cli
from contract.i18n import Texts
from contract.metrics import Metric
from gateway import commands
from gateway import timerange as q
from gateway.config import load
from gateway.observations.records import PHOTOS_DIR
from gateway.stores import open_reader
from gateway.trust.registry import load_dir


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "evidence",
        help="write an evidence bundle (zip): readings, keys, calibrations, alerts, report, manifest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--config", required=True, help="path to gateway.toml")
    parser.add_argument("--site", required=True)
    parser.add_argument("--node", action="append", default=[], help="only this node (repeatable)")
    parser.add_argument("--start", required=True, help="UTC date or time, e.g. 2026-11-01")
    parser.add_argument("--end", required=True, help="UTC date or time, e.g. 2026-12-01")
    parser.add_argument("--out", type=Path, required=True, help="the zip file to write")
    parser.add_argument("--tsa", help="URL of an RFC 3161 time-stamping authority for the manifest")
    parser.add_argument(
        "--calibrations", type=Path, help="directory of the network's calibration files (*.toml)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # here, not at the top: every `minewatch-gateway` process builds this command's parser, and
    # these (zip files, calibration, time-stamping) would cost each, `run` too, about 3 MB
    from gateway import dataset, evidence, export
    from gateway.commands.export import check_known
    from gateway.trust import tsa

    cfg = load(args.config)
    start, end = q.parse_time(args.start, "--start"), q.parse_time(args.end, "--end")
    q.check_range(start, end)
    q.check_ids(args.site, args.node)
    if args.calibrations is not None and not args.calibrations.is_dir():
        raise q.QueryArgumentError(f"--calibrations {args.calibrations}: not a directory")
    if args.tsa is not None and not args.tsa.startswith(("http://", "https://")):
        raise q.QueryArgumentError(f"--tsa {args.tsa!r}: give the TSA's http:// or https:// URL")
    reader = open_reader(cfg.influxdb)
    req = export.ExportRequest(site=args.site, nodes=list(args.node), start=start, end=end, metrics=[])
    check_known(reader, req)
    # every stored metric: a signature covers them all, so each row can be re-verified
    req = dataclasses.replace(req, metrics=dataset.metrics_stored(reader) or [Metric.PM2_5])
    keys = [
        r
        for r in sorted(load_dir(cfg.keys_dir).values(), key=lambda r: (r.node, r.created))
        if r.site == args.site and (not args.node or r.node in args.node)
    ]

    def report(html: Path, pdf: Path) -> None:
        """The `report` command itself, through its own arguments: the bundle holds what it makes."""
        argv = ["report", "--config", str(args.config), "--site", args.site, "--start", args.start]
        argv += ["--end", args.end, "--out", str(html), "--pdf", str(pdf)]
        argv += [x for n in args.node for x in ("--node", n)]
        if args.calibrations is not None:
            argv += ["--calibrations", str(args.calibrations)]
        sub = build_cli("minewatch-gateway", "", "", commands).parse_args(argv)
        sub.func(sub)

    bundle = evidence.BundleRequest(
        export=req,
        out=args.out,
        keys=keys,
        calibrations_dir=args.calibrations,
        generated=datetime.now(UTC),
        tsa=args.tsa,
        photos=cfg.data_dir / PHOTOS_DIR,
    )
    with tempfile.TemporaryDirectory(prefix="minewatch-evidence-") as work:
        written = evidence.write(reader, bundle, Path(work), report, tsa.stamp)
    reader.close()
    texts = Texts()
    print(
        texts("evidence_cli.written", out=args.out, files=written.files, rows=written.rows), file=sys.stderr
    )
    if written.stamp is not None:
        when = q.format_time(written.stamp.time)
        print(texts("evidence_cli.stamped", tsa=written.stamp.tsa_subject, time=when), file=sys.stderr)
    return 0
