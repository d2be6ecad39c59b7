"""The report's access to the database: every query the reader runs is kept, by table, to be printed."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from gateway.report.model import DAY
from gateway.stores.reader import Reader, Span, Total, Trace
from gateway.stores.rollups import FACT


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
        self.rolled: Span | None = None  # the whole days read from the roll-ups, when set
        self.edges: list[Span] = [self.span]  # the rest, read from the raw readings
        self._facts: tuple[Span | None, list[Span]] | None = None

    def use_rollups(self) -> None:
        """Read the whole UTC days of a period longer than a day from the roll-ups (reading_1d,
        reading_1h), and only its partial first and last days from the raw readings."""
        first = _ceil_day(self.start)
        last = self.end.replace(hour=0, minute=0, second=0, microsecond=0)
        if last - first < DAY:
            return
        self.rolled = Span(self.site, self.node_filter, first, last)
        pieces = [(self.start, first), (last, self.end)]
        self.edges = [Span(self.site, self.node_filter, lo, hi) for lo, hi in pieces if hi > lo]

    def facts(self) -> tuple[Span | None, list[Span]]:
        """Where the gaps, flags, calibrations and signatures come from: the hours of the rolled
        days (their facts, gateway/stores/influx_rollup.py) and the raw readings of the rest; or
        the raw readings of the whole period when some rolled hour lacks its facts (roll-ups from
        before them: `rollup --rebuild` adds them), so that no count is taken from what is not there."""
        if self._facts is None:
            self._facts = None, [self.span]
            if self.rolled is not None:
                selects: list[tuple[Total, str]] = [("count", "readings"), ("count", FACT)]
                rows = list(self.reader.rollup_totals(self.rolled, "1h", selects, per_node=False))
                if rows and rows[0].get("count_readings") == rows[0].get(f"count_{FACT}"):
                    self._facts = self.rolled, self.edges
        return self._facts

    def trace(self, key: str) -> Trace:
        return self.queries[key].append

    def expected(self, interval_s: int, day_start: datetime) -> int:
        lo, hi = max(day_start, self.start), min(day_start + DAY, self.end)
        return max(0, round((hi - lo).total_seconds() / interval_s))


def _ceil_day(ts: datetime) -> datetime:
    day = ts.replace(hour=0, minute=0, second=0, microsecond=0)
    return day if day == ts else day + DAY


def days(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The UTC days (clipped to the period) that the period touches."""
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    day = first
    while day < end:
        out.append((max(day, start), min(day + DAY, end)))
        day += DAY
    return out
