"""`minewatch-gateway verify`: re-verify readings against the nodes' public keys, with nothing but
the rows and the keys, or check a whole evidence bundle.

    verify --keys DIR|keys.json --input export.csv|export.jsonl
    verify --keys DIR|keys.json --influx-url URL --database DB [--where COND]
    verify --bundle evidence.zip [--tsa-cert tsa.pem]

`--keys` takes the gateway's keys/ directory or the dashboard's /api/v1/keys answer saved to a file.
The checks are contract/verify_offline.py, which runs alone (`python -m contract.verify_offline`).

Exit status: 0 every row verified (a bundle: no problem); 1 some row failed or a problem was found
(each listed with its reason); 3 every signed row verified but some rows are unsigned (counted per
node); 2 bad input.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contract.configfile import ConfigError
from contract.i18n import Texts
from gateway.config import InfluxConfig
from gateway.stores import CONDITION_EXAMPLE, StoreError, open_reader
from gateway.trust.registry import KeyRegistry

if TYPE_CHECKING:  # imported where used: every `minewatch-gateway` process, `run` too, builds
    # this command's parser, and the offline checker costs each about 2 MB
    from contract import verify_offline as vo


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "verify",
        help="re-verify the signatures of exported or stored readings, or check an evidence bundle",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--keys", type=Path, help="the key registry directory (<kid>.json files) or a keys JSON file"
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", type=Path, help="a CSV or JSON Lines export (docs/trust.md)")
    source.add_argument("--influx-url", help="query InfluxDB 1.x directly, e.g. http://127.0.0.1:8086")
    source.add_argument("--bundle", type=Path, help="an evidence bundle written by `evidence`")
    parser.add_argument(
        "--tsa-cert", type=Path, help="with --bundle: the TSA (or its CA) certificate to trust"
    )
    parser.add_argument("--database", default="minewatch", help="with --influx-url (default minewatch)")
    parser.add_argument("--where", default="", help=f'InfluxQL condition, e.g. "{CONDITION_EXAMPLE}"')
    parser.add_argument("--username", help="with --influx-url; password from MINEWATCH_INFLUX_PASSWORD")
    parser.add_argument("--language", default="en", help="language of the verdict lines (en, mn)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from contract import verify_offline as vo

    texts = Texts(args.language)
    try:
        if args.bundle is not None:
            return _bundle(args, texts)
        if args.keys is None:
            raise ConfigError("--keys DIR or FILE is required with --input and --influx-url")
        keys, problems = _keys(args.keys)
        if not keys and not problems:
            raise ConfigError(f"{args.keys}: no keys (<kid>.json files or key records) found")
        rows = vo.read_rows_file(args.input) if args.input else _influx_rows(args)
        report = vo.check_rows(rows, keys)
    except vo.Unusable as exc:
        raise ConfigError(str(exc)) from exc
    for problem in [*problems, *report.problems]:
        print(_line(problem, texts))
    for ident, n in sorted(report.unsigned.items()):
        print(texts("verify_cli.unsigned_rows", n=n, node=ident))
    counts = ", ".join(texts("verify_cli.outcome", n=n, outcome=o) for o, n in report.outcomes.most_common())
    print(texts("verify_cli.summary", rows=report.rows, outcomes=counts or texts("verify_cli.none")))
    return 1 if problems else report.exit_status()


def _keys(path: Path) -> tuple[dict[str, vo.Key], list[vo.Problem]]:
    from contract import verify_offline as vo
    from gateway.trust.reverify import offline_key

    """The gateway's keys/ directory, read as the gateway reads it (each bad file named, exit 2), or
    a file of key records such as the dashboard's /api/v1/keys, read as a third party would."""
    if path.is_dir():
        return {r.kid: offline_key(r) for r in KeyRegistry(path).records()}, []
    return vo.load_keys(path)


def _line(problem: vo.Problem, texts: Texts) -> str:
    """The verdict's meaning in the reader's language, then the checker's detail (file, row, key)."""
    key = f"verify_cli.code.{problem.code}"
    meaning = texts(key) if texts.has(key) else problem.code
    return f"{problem.code} ({meaning}): {problem.text}"


def _bundle(args: argparse.Namespace, texts: Texts) -> int:
    from contract import verify_offline as vo

    trusted = vo.load_certificates(args.tsa_cert) if args.tsa_cert else None
    report = vo.check_bundle(args.bundle, trusted)
    for note in report.notes:
        print(texts("verify_cli.note", note=note))
    for problem in report.problems:
        print(_line(problem, texts))
    if report.rows is not None:
        counts = ", ".join(
            texts("verify_cli.outcome", n=n, outcome=o) for o, n in report.rows.outcomes.most_common()
        )
        print(texts("verify_cli.summary", rows=report.rows.rows, outcomes=counts or texts("verify_cli.none")))
    if report.problems:
        print(texts("verify_cli.bundle_bad", n=len(report.problems)))
        return 1
    print(texts("verify_cli.bundle_ok"))
    return 0


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
