"""InfluxQL text: quoting, time literals, and the one range rule, for every InfluxDB reader.

The report shows regulators these queries verbatim, so they must be plain InfluxQL they can paste
into the `influx` shell. A reading's `ts` is the END of its averaging window, so a period holds the
readings with `start < time <= end`, and period means group with `GROUP BY time(1h, 1ms)`: buckets
(t, t + 1h] in millisecond time, labelled t + 1 ms. Nothing a visitor typed is pasted in: ids are
checked against the identifier pattern before they get here, and are still quoted, so a mistake in
one layer is not an injection.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.timerange import format_time, from_ms

BUCKET_OFFSET = timedelta(milliseconds=1)
"""Shift of every GROUP BY time() bucket: a reading stamped 01:00:00.000 ends the 00:00–01:00 hour."""


CONDITION_EXAMPLE = "site = 'tsagaan' AND time > now() - 30d"
"""For `verify --where`, whose condition the user writes in InfluxQL, passed through as typed."""


def ident(name: str) -> str:
    """A double-quoted identifier (InfluxQL: backslash escapes `"` and `\\`)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def string(value: str) -> str:
    """A single-quoted string literal (InfluxQL: backslash escapes `'` and `\\`)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def time_literal(ts: datetime) -> str:
    if ts.tzinfo is None:
        raise ValueError("naive datetime: give UTC times")
    return string(format_time(ts))


def where(site: str | None, nodes: list[str], start: datetime, end: datetime) -> str:
    """The condition every reading query shares: one site (any when None), some nodes (all when
    empty), (start, end]."""
    parts = [] if site is None else [f'"site" = {string(site)}']
    if nodes:
        parts.append("(" + " OR ".join(f'"node" = {string(n)}' for n in nodes) + ")")
    parts.append(f"time > {time_literal(start)} AND time <= {time_literal(end)}")
    return " AND ".join(parts)


def every(bucket: timedelta) -> str:
    """A GROUP BY time() duration: `1h`, `24h`, `300s`."""
    seconds = int(bucket.total_seconds())
    return f"{seconds // 3600}h" if seconds % 3600 == 0 else f"{seconds}s"


def bucket_start(label_ms: int) -> datetime:
    """The start of a `GROUP BY time(d, 1ms)` bucket from the label InfluxDB gives it."""
    return from_ms(label_ms) - BUCKET_OFFSET
