"""`minewatch-gateway monitors add|list|disable`: the accounts monitors log in to the dashboard
with (to moderate residents' observations and record maintenance visits).

The password is read from the terminal (twice) or, with `--password-stdin`, from the first line
of standard input (for provisioning scripts); never from the command line, where `ps` and the
shell's history would show it. Only its scrypt hash is kept (gateway/observations/accounts.py).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from contract.clock import Clock, utc_now
from contract.configfile import ConfigError
from gateway.config import load
from gateway.observations.accounts import ACCOUNTS_FILE, AccountError, Accounts


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "monitors", help="make, list or disable the dashboard accounts of monitors"
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    make = verbs.add_parser("add", help="make an account (asks for its password)")
    make.add_argument("--config", required=True, help="path to gateway.toml")
    make.add_argument("--name", required=True, help="the login name: letters, digits, '.', '_', '-'")
    make.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    make.set_defaults(func=run_add)
    show = verbs.add_parser("list", help="list the accounts")
    show.add_argument("--config", required=True, help="path to gateway.toml")
    show.set_defaults(func=run_list)
    off = verbs.add_parser("disable", help="refuse an account from now on (its sessions end)")
    off.add_argument("--config", required=True, help="path to gateway.toml")
    off.add_argument("--name", required=True)
    off.add_argument("--by", required=True, help="who disables it (recorded)")
    off.set_defaults(func=run_disable)


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ConfigError("the two passwords differ; nothing stored")
    return first


def run_add(args: argparse.Namespace, clock: Clock = utc_now) -> int:
    cfg = load(args.config)
    password = _password(args.password_stdin)
    accounts = Accounts(cfg.data_dir / ACCOUNTS_FILE)
    try:
        made = accounts.add(args.name, password, clock())
    except AccountError as exc:
        raise ConfigError(str(exc)) from None
    finally:
        accounts.close()
    print(f"monitor {made.name}: account made; log in at the dashboard's /login")
    return 0


def run_list(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    accounts = Accounts(cfg.data_dir / ACCOUNTS_FILE)
    try:
        found = accounts.monitors()
    finally:
        accounts.close()
    for m in found:
        state = f"disabled {m.disabled:%Y-%m-%d %H:%M} UTC" if m.disabled else "in use"
        print(f"{m.name}  since {m.created:%Y-%m-%d}  {state}")
    if not found:
        print("no monitors yet; make an account with `monitors add --name NAME`")
    return 0


def run_disable(args: argparse.Namespace, clock: Clock = utc_now) -> int:
    cfg = load(args.config)
    if not args.by.strip() or len(args.by) > 64 or not args.by.isprintable():
        raise ConfigError("--by must be 1 to 64 printable characters")
    accounts = Accounts(cfg.data_dir / ACCOUNTS_FILE)
    try:
        if not accounts.disable(args.name, args.by.strip(), clock()):
            raise ConfigError(f"no monitor {args.name!r} in use; see `monitors list`")
    finally:
        accounts.close()
    print(f"monitor {args.name}: disabled; its sessions are ended")
    return 0
