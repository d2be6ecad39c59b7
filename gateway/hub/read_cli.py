"""The hub's read side on the command line, under `minewatch-gateway hub` (docs/region.md, "What a
jurisdiction sees"; gateway/commands/hub.py adds these to its subcommands).

`hub serve` runs the web server (gateway/hub/web.py); `hub token` makes a jurisdiction's API token
(printed once, stored hashed), `hub tokens` lists them, `hub revoke-token` revokes one; `hub export`,
`hub report` and `hub evidence --as JURISDICTION` write what the web server's /api/v1/export.csv,
/report.html and /evidence.zip give, read as that jurisdiction's role: PostgreSQL lets the login
role of hub.toml's [database] take it only when it is a member (the hub's own role, or a person's
role granted it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from contract.clock import utc_now
from contract.configfile import ConfigError


def add(hub: Any) -> None:
    p = hub.add_parser(
        "serve", help="serve the hub's dashboard, API and public agreements ([web] in hub.toml)"
    )
    p.add_argument("--config", required=True)
    p.add_argument("--host", help="listen on this address instead of [web] host")
    p.add_argument("--port", type=int, help="listen on this port instead of [web] port")
    p.set_defaults(func=_serve)

    p = hub.add_parser("token", help="make an API token for a jurisdiction (printed once, stored hashed)")
    p.add_argument("--config", required=True)
    p.add_argument("--jurisdiction", required=True)
    p.add_argument("--label", default="", help="what or who it is for, e.g. 'aimag data office'")
    p.add_argument("--by", required=True, help="who makes it")
    p.set_defaults(func=_token)

    p = hub.add_parser(
        "tokens", help="list the API tokens (ids, jurisdictions, made and revoked when, by whom)"
    )
    p.add_argument("--config", required=True)
    p.set_defaults(func=_tokens)

    p = hub.add_parser("revoke-token", help="revoke an API token: refused from then on")
    p.add_argument("--config", required=True)
    p.add_argument("--id", required=True, help="the token's id (`hub tokens`; mwh_<id>_...)")
    p.add_argument("--by", required=True, help="who revokes it")
    p.set_defaults(func=_revoke)

    outputs = (
        ("export", "a site's readings (CSV or JSON Lines)"),
        ("report", "a site's report (HTML)"),
        ("evidence", "a site's evidence bundle (zip)"),
    )
    for name, what in outputs:
        p = hub.add_parser(name, help=f"write {what} as a jurisdiction sees it on the hub")
        p.add_argument("--config", required=True)
        p.add_argument("--as", dest="as_", required=True, metavar="JURISDICTION", help="read as its role")
        p.add_argument("--site", required=True)
        p.add_argument("--node", action="append", default=[])
        p.add_argument("--start", required=True)
        p.add_argument("--end", required=True)
        p.add_argument("--metrics", help="comma-separated (default: every stored metric)")
        p.add_argument("--out", type=Path, required=True)
        if name == "export":
            p.add_argument("--format", choices=["csv", "jsonl"], default="csv")
        if name == "report":
            p.add_argument("--pdf", type=Path, help="also write a PDF here (the `report` extra)")
        p.set_defaults(func=_output, output=name)


def _access(args: argparse.Namespace) -> Any:
    from gateway.hub.config import load
    from gateway.stores.postgres_access import HubAccess

    return HubAccess(load(args.config).database.conninfo())


def _token(args: argparse.Namespace) -> int:
    access = _access(args)
    try:
        token = access.make_token(args.jurisdiction, args.label, args.by, utc_now())
    finally:
        access.close()
    print(token)
    print("shown once: give it to the jurisdiction's reader; only its hash is kept", file=sys.stderr)
    return 0


def _tokens(args: argparse.Namespace) -> int:
    access = _access(args)
    try:
        for t in access.tokens():
            state = f"revoked {t.revoked:%Y-%m-%dT%H:%M:%SZ} by {t.revoked_by}" if t.revoked else "valid"
            made = f"made {t.created:%Y-%m-%dT%H:%M:%SZ} by {t.created_by}"
            print(f"{t.id}\t{t.jurisdiction}\t{t.label}\t{made}\t{state}")
    finally:
        access.close()
    return 0


def _revoke(args: argparse.Namespace) -> int:
    access = _access(args)
    try:
        if not access.revoke_token(args.id, args.by, utc_now()):
            raise ConfigError(f"token {args.id}: no such token, or revoked already")
    finally:
        access.close()
    print(f"token {args.id} revoked")
    return 0


def _output(args: argparse.Namespace) -> int:
    from gateway.hub import outputs
    from gateway.hub.config import load
    from gateway.stores.postgres_reader import PostgresReader

    cfg = load(args.config)
    req = outputs.request(args.site, args.node, args.start, args.end, args.metrics)
    access = _access(args)
    try:
        role = access.role_of(args.as_)
    finally:
        access.close()
    if role is None:
        raise ConfigError(f"--as {args.as_}: no such jurisdiction")
    reader = PostgresReader(cfg.database.conninfo(), role)
    try:
        outputs.check_known(reader, req)
        if args.output == "export":
            rows = outputs.export_file(reader, req, args.out, args.format)
            print(f"{rows} rows to {args.out}", file=sys.stderr)
        elif args.output == "report":
            outputs.report_file(reader, req, args.out, utc_now(), args.pdf)
            print(f"report written to {args.out}", file=sys.stderr)
        else:
            rows = outputs.evidence_file(reader, req, args.out, utc_now())
            print(f"evidence bundle of {rows} readings written to {args.out}", file=sys.stderr)
    finally:
        reader.close()
    return 0


def _serve(args: argparse.Namespace) -> int:
    from gateway.commands.serve import listen_config, stop_on_signals, web_extra
    from gateway.hub.config import load

    cfg = load(args.config)
    web_extra()
    from gateway.hub.web import create_hub_app
    from gateway.web.server import BackgroundServer

    web = listen_config(cfg.web, args)
    stop = stop_on_signals()
    app, close = create_hub_app(cfg.database.conninfo(), web, cfg.public.jurisdiction)
    server = BackgroundServer(app, web)
    server.start()
    print(f"hub on http://{web.host}:{web.port}/", file=sys.stderr, flush=True)
    stop.wait()
    server.stop()
    close()
    return 0
