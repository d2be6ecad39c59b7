"""`minewatch-gateway rejects --config gateway.toml [--since 2h]`: what the gateway refused, and why.

Reads the dead-letter store in the gateway's data directory (SQLite in WAL mode: safe to read while
the gateway runs). Prints the counts per reason since the store was created, including bodies dropped
to keep it bounded, then the kept messages, oldest first, each with its time, reason, topic, detail and
payload (verbatim when it is printable UTF-8, else hexadecimal).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from datetime import UTC, datetime
from typing import Any

from contract.configfile import ConfigError
from contract.wire import format_ts
from gateway.config import load
from gateway.deadletter import DeadLetters, KeptReject
from gateway.service import DEADLETTER_FILE

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def add(sub: Any) -> None:
    parser: argparse.ArgumentParser = sub.add_parser(
        "rejects", help="list the messages the gateway refused, with their reasons"
    )
    parser.add_argument("--config", required=True, help="path to gateway.toml")
    parser.add_argument(
        "--since", help="only rejects since then: a duration (30m, 2h, 7d) or an ISO 8601 time (UTC if bare)"
    )
    parser.add_argument("--reason", help="only this reason (e.g. not_json)")
    parser.add_argument("--limit", type=int, default=100, help="at most this many messages (newest kept)")
    parser.add_argument("--json", action="store_true", help="one JSON object per line instead of text")
    parser.set_defaults(func=run)


def parse_since(text: str, now: float) -> float:
    """Unix time from `30m`/`2h`/`7d` before `now`, or from an ISO 8601 time."""
    match = _DURATION.match(text.strip())
    if match:
        return now - float(match.group(1)) * _UNIT_S[match.group(2)]
    try:
        when = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(
            f"--since {text!r}: give a duration like 2h or a time like 2026-11-22T10:00Z"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _payload_text(r: KeptReject) -> str:
    try:
        text = r.payload.decode("utf-8")
        if text.isprintable():
            return text
    except UnicodeDecodeError:
        pass
    return "hex:" + r.payload.hex()


def run(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    since = parse_since(args.since, time.time()) if args.since else None
    path = cfg.data_dir / DEADLETTER_FILE
    if not path.exists():
        print(f"no rejects: {path} does not exist yet")
        return 0
    store = DeadLetters(path)
    try:
        counts = store.counts()
        kept = store.list(since=since, reason=args.reason, limit=args.limit)
    finally:
        store.close()
    if args.json:
        for r in kept:
            doc = {
                "at": format_ts(datetime.fromtimestamp(r.at, UTC)),
                "reason": r.reason,
                "topic": r.topic,
                "detail": r.detail,
                "size": r.size,
                "truncated": r.is_truncated,
                "payload": _payload_text(r),
            }
            print(json.dumps(doc, ensure_ascii=False))
        return 0
    print("rejects per reason (all time; bodies dropped to stay bounded):")
    if not counts:
        print("  none")
    for reason, (total, dropped) in counts.items():
        print(f"  {reason:<20} {total:>9}" + (f"  ({dropped} bodies dropped)" if dropped else ""))
    scope = f" since {format_ts(datetime.fromtimestamp(since, UTC))}" if since is not None else ""
    print(
        f"\nkept messages{scope}: {len(kept)}"
        + (f" (newest {args.limit})" if len(kept) == args.limit else "")
    )
    for r in kept:
        cut = f" [first {len(r.payload)} of {r.size} bytes]" if r.is_truncated else ""
        print(f"{format_ts(datetime.fromtimestamp(r.at, UTC))}  {r.reason}  {r.topic}")
        print(f"    why: {r.detail}")
        print(f"    payload{cut}: {_payload_text(r)}")
    return 0
