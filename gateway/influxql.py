"""InfluxQL text for the regulators' commands: quoting, time literals, and the one range rule.

Every query `export` and `report` run is built here and shown to the regulator verbatim, so it must
be plain InfluxQL they can paste into the `influx` shell. A reading's `ts` is the END of its averaging
window, so a period holds the readings with `start < time <= end`, and period means group with
`GROUP BY time(1h, 1ms)`: buckets (t, t + 1h] in millisecond time, labelled t + 1 ms.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contract.wire import is_identifier

BUCKET_OFFSET = timedelta(milliseconds=1)
"""Shift of every GROUP BY time() bucket: a reading stamped 01:00:00.000 ends the 00:00–01:00 hour."""


class QueryArgumentError(ValueError):
    """A site, node, metric or time the user gave that cannot become a query; the CLIs exit 2."""


def ident(name: str) -> str:
    """A double-quoted identifier (measurement, tag or field key)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def string(value: str) -> str:
    """A single-quoted string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def time_literal(ts: datetime) -> str:
    return string(format_time(ts))


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


def where(site: str, nodes: list[str], start: datetime, end: datetime) -> str:
    """The WHERE clause every reading query shares: one site, some nodes (all when empty), (start, end]."""
    parts = [f'"site" = {string(site)}']
    if nodes:
        parts.append("(" + " OR ".join(f'"node" = {string(n)}' for n in nodes) + ")")
    parts.append(f"time > {time_literal(start)} AND time <= {time_literal(end)}")
    return " AND ".join(parts)


def bucket_start(label_ms: int) -> datetime:
    """The start of a `GROUP BY time(d, 1ms)` bucket from the label InfluxDB gives it."""
    return from_ms(label_ms) - BUCKET_OFFSET
