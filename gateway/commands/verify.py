"""`minewatch-gateway verify --keys DIR (--input export.csv | --influx-url URL --database DB)`:
re-verify stored readings against the nodes' public keys, with nothing but the rows and the keys.

Exit status: 0 every row verified; 1 some row did not (each listed with its reason); 2 bad input.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from contract import csvcell
from contract.configfile import ConfigError
from gateway.config import InfluxConfig
from gateway.stores import CONDITION_EXAMPLE, StoreError, open_reader
from gateway.trust.registry import KeyRegistry, RegistryError
from gateway.trust.reverify import reverify


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "verify",
        help="re-verify the signatures of exported or stored readings against the public keys",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--keys", required=True, type=Path, help="the key registry directory (<kid>.json files)"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--input", type=Path, help="CSV with the columns of measurement `reading` (docs/trust.md)"
    )
    source.add_argument("--influx-url", help="query InfluxDB 1.x directly, e.g. http://127.0.0.1:8086")
    parser.add_argument("--database", default="minewatch", help="with --influx-url (default minewatch)")
    parser.add_argument("--where", default="", help=f'InfluxQL condition, e.g. "{CONDITION_EXAMPLE}"')
    parser.add_argument("--username", help="with --influx-url; password from MINEWATCH_INFLUX_PASSWORD")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        registry = KeyRegistry(args.keys)
    except RegistryError as exc:
        raise ConfigError(str(exc)) from exc
    if not registry.records():
        raise ConfigError(f"{args.keys}: no keys (<kid>.json files) found")
    rows = _csv_rows(args.input) if args.input else _influx_rows(args)
    report = reverify(rows, registry)
    for line in report.failures:
        print(line)
    summary = ", ".join(f"{n} {outcome}" for outcome, n in report.outcomes.most_common())
    print(f"{report.rows} rows: {summary or 'none'}")
    return 0 if report.all_verified else 1


def _csv_rows(path: Path) -> Iterator[dict[str, Any]]:
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    with handle:
        reader = csv.DictReader(handle)
        header = set(reader.fieldnames or [])
        missing = sorted({"site", "node", "seq", "period_s", "flags", "sig", "kid"} - header)
        if not header & {"time", "ts"}:
            missing.insert(0, "time")
        if missing:
            raise ConfigError(
                f"{path}: no column(s) {', '.join(missing)}: a signature covers every field of a reading, "
                "so the export must hold them all (docs/trust.md, 'Verifying')"
            )
        for row in reader:  # the export wrote a text cell that could be a formula with a leading '
            yield {k: csvcell.restore(v) if isinstance(v, str) else v for k, v in row.items()}


def _influx_rows(args: argparse.Namespace) -> Iterator[dict[str, Any]]:
    # the password, with --username, comes from MINEWATCH_INFLUX_PASSWORD as InfluxConfig reads it
    cfg = InfluxConfig(
        url=args.influx_url,
        database=args.database,
        api="v1",
        username=args.username,
        timeout_s=60,
    )
    reader = open_reader(cfg)
    try:
        yield from reader.signed_rows(args.where)
    except StoreError as exc:
        raise ConfigError(f"{args.influx_url}: query failed: {exc}") from exc
    finally:
        reader.close()
    print(f"queried {args.influx_url} database {args.database}", file=sys.stderr)
