"""Times and ids as the regulators' commands take them, checked before anything connects.

Not query text: the backends in gateway.stores turn these values into their own language. Kept
apart so the CLIs can refuse bad input (exit 2) without importing a backend.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contract.wire import is_identifier


class QueryArgumentError(ValueError):
    """A site, node, metric or time the user gave that cannot become a query; the CLIs exit 2."""


def format_time(ts: datetime) -> str:
    """RFC 3339 UTC; milliseconds only when there are any, as the database stores milliseconds."""
    ts = ts.astimezone(UTC)
    text = ts.strftime("%Y-%m-%dT%H:%M:%S")
    if ts.microsecond:
        text += f".{ts.microsecond // 1000:03d}"
    return text + "Z"


def from_ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def parse_time(text: str, what: str) -> datetime:
    """`2026-11-01` (midnight UTC), `2026-11-01T06:00`, `2026-11-01T06:00:00Z` or with an offset.
    A time without an offset is UTC: the database and the contract are UTC throughout."""
    try:
        ts = datetime.fromisoformat(text.replace("Z", "+00:00") if text.endswith("Z") else text)
    except ValueError:
        raise QueryArgumentError(
            f"{what} {text!r} is not a date or time; use e.g. 2026-11-01 or 2026-11-01T06:00:00Z"
        ) from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def check_range(start: datetime, end: datetime) -> None:
    if end <= start:
        raise QueryArgumentError(f"--end {format_time(end)} must be after --start {format_time(start)}")


def check_ids(site: str, nodes: list[str]) -> None:
    for kind, value in [("site", site)] + [("node", n) for n in nodes]:
        if not is_identifier(value):
            raise QueryArgumentError(
                f"--{kind} {value!r} is not a valid id "
                "(lowercase letters, digits, - and _; see docs/protocol.md)"
            )
