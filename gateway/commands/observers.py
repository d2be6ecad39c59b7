"""`minewatch-gateway observers add|revoke|list`: the codes residents submit observations with.

A code is shown once, when it is made (only its SHA-256 is kept in `<data_dir>/observations.sqlite`);
the site's operator hands it to a resident and revokes it when it is lost or abused. A revoked code
is refused at once by the dashboard, which reads the same file.
"""

from __future__ import annotations

import argparse
from typing import Any

from contract.clock import Clock, utc_now
from contract.configfile import ConfigError
from gateway.config import load
from gateway.observations.store import RATE_PER_HOUR, STORE_FILE, ObservationStore


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "observers", help="make, revoke or list the codes residents submit observations with"
    )
    verbs = parser.add_subparsers(dest="verb", required=True)
    make = verbs.add_parser("add", help="make a code for one person (shown once)")
    make.add_argument("--config", required=True, help="path to gateway.toml")
    make.add_argument("--name", required=True, help="whom the code is for (kept with it)")
    make.set_defaults(func=run_add)
    revoke = verbs.add_parser("revoke", help="refuse a code from now on")
    revoke.add_argument("--config", required=True, help="path to gateway.toml")
    revoke.add_argument("--id", type=int, required=True, help="the observer's number, as `list` shows it")
    revoke.add_argument("--by", required=True, help="who revokes it (recorded)")
    revoke.set_defaults(func=run_revoke)
    show = verbs.add_parser("list", help="list the observers and whether their code still works")
    show.add_argument("--config", required=True, help="path to gateway.toml")
    show.set_defaults(func=run_list)


def _name(text: str, what: str) -> str:
    if not text.strip() or len(text) > 64 or not text.isprintable():
        raise ConfigError(f"{what} must be 1 to 64 printable characters")
    return text.strip()


def run_add(args: argparse.Namespace, clock: Clock = utc_now) -> int:
    cfg = load(args.config)
    store = ObservationStore(cfg.data_dir / STORE_FILE)
    try:
        observer, code = store.add_observer(_name(args.name, "--name"), clock())
    finally:
        store.close()
    print(f"observer {observer.id} ({observer.name}): code {code}")
    print(
        f"shown only now; at most {RATE_PER_HOUR} observations an hour; "
        f"revoke it with `observers revoke --id {observer.id} --by NAME`"
    )
    return 0


def run_revoke(args: argparse.Namespace, clock: Clock = utc_now) -> int:
    cfg = load(args.config)
    store = ObservationStore(cfg.data_dir / STORE_FILE)
    try:
        if not store.revoke(args.id, _name(args.by, "--by"), clock()):
            raise ConfigError(f"no observer {args.id} with a code in use; see `observers list`")
    finally:
        store.close()
    print(f"observer {args.id}: code revoked")
    return 0


def run_list(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    store = ObservationStore(cfg.data_dir / STORE_FILE)
    try:
        found = store.observers()
    finally:
        store.close()
    for o in found:
        state = f"revoked {o.revoked:%Y-%m-%d %H:%M} UTC by {o.revoked_by or '?'}" if o.revoked else "in use"
        print(f"{o.id}  {o.name}  since {o.created:%Y-%m-%d}  {state}")
    if not found:
        print("no observers yet; make a code with `observers add --name NAME`")
    return 0
