"""The report's access to the database: every query the reader runs is kept, by table, to be printed."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from gateway.report.model import DAY
from gateway.stores.reader import Reader, Span, Trace


class QueryLog:
    """One site and period; `trace(key)` records the text of each query under the key of its table."""

    def __init__(
        self,
        reader: Reader,
        site: str,
        start: datetime,
        end: datetime,
        nodes: list[str],
        interval_s: int | None,
    ) -> None:
        self.reader, self.site, self.start, self.end = reader, site, start, end
        self.node_filter = nodes
        self.interval_override = interval_s
        self.span = Span(site, nodes, start, end)
        self.queries: dict[str, list[str]] = defaultdict(list)

    def trace(self, key: str) -> Trace:
        return self.queries[key].append

    def expected(self, interval_s: int, day_start: datetime) -> int:
        lo, hi = max(day_start, self.start), min(day_start + DAY, self.end)
        return max(0, round((hi - lo).total_seconds() / interval_s))


def days(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The UTC days (clipped to the period) that the period touches."""
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    day = first
    while day < end:
        out.append((max(day, start), min(day + DAY, end)))
        day += DAY
    return out
