"""Building InfluxQL from validated values: identifiers and strings quoted, times as integers.

Nothing a visitor typed is ever pasted into a query. Ids are checked against the identifier pattern
before they get here, and are still quoted, so a mistake in one layer is not an injection.
"""

from __future__ import annotations

from datetime import UTC, datetime


def ident(name: str) -> str:
    """A double-quoted identifier (InfluxQL: backslash escapes `"` and `\\`)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal(text: str) -> str:
    """A single-quoted string literal (InfluxQL: backslash escapes `'` and `\\`)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ms(ts: datetime) -> str:
    """A time literal in epoch milliseconds, e.g. `1795341660000ms`."""
    if ts.tzinfo is None:
        raise ValueError("naive datetime: give UTC times")
    return f"{int(ts.astimezone(UTC).timestamp() * 1000)}ms"


def where(*, site: str | None = None, node: str | None = None, start: datetime, end: datetime) -> str:
    """`WHERE` for a half-open time range [start, end) and optional site and node tags."""
    parts = [f"time >= {ms(start)}", f"time < {ms(end)}"]
    if site is not None:
        parts.append(f"{ident('site')} = {literal(site)}")
    if node is not None:
        parts.append(f"{ident('node')} = {literal(node)}")
    return "WHERE " + " AND ".join(parts)
