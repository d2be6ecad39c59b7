"""Per node: readings per day against those expected, flagged readings, offline periods and gaps.

A gap is no reading for longer than max(3 intervals, 10 min); the readings lost in it come from
`seq` (the node numbers every reading it makes), so a gap with none lost means the node was not
measuring, and one with readings lost means they never reached the database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from contract.flags import Flag, GatewayFlag
from gateway import dataset
from gateway.report.model import DAY, Day, Gap, NodeSection
from gateway.report.querylog import QueryLog, days
from gateway.stores.reader import Span, Total
from gateway.timerange import from_ms


def node_sections(log: QueryLog, has_status: bool) -> list[NodeSection]:
    counts: dict[str, dict[datetime, int]] = defaultdict(dict)
    if log.rolled is not None:  # whole days from the roll-ups: `readings` is count("seq")
        for row in log.reader.rollups(log.rolled, "1d", ["readings"], trace=log.trace("completeness")):
            counts[str(row["node"])][row["start"]] = int(row["readings"] or 0)
    for edge in log.edges:
        for row in log.reader.aggregate(
            edge, "seq", ["count"], bucket=DAY, fill="zero", trace=log.trace("completeness")
        ):
            if row["start"] + DAY > edge.start:  # zero-filled, the day before the edge answers too
                counts[str(row["node"])][row["start"]] = int(row["count"] or 0)
    names = sorted(set(counts) | set(log.node_filter))
    sections = []
    for node in names:
        interval = log.interval_override or dataset.interval_s(log.reader, log.site, node, log.start, log.end)
        section = NodeSection(node, interval)
        for lo, _hi in days(log.start, log.end):
            day = lo.replace(hour=0, minute=0, second=0, microsecond=0)
            section.days.append(Day(day, counts[node].get(day, 0), log.expected(interval, day)))
        sections.append(section)
    _flags(log, sections)
    if has_status:
        _offline(log, sections)
    _gaps(log, sections)
    return sections


def _flags(log: QueryLog, sections: list[NodeSection]) -> None:
    """The node's flags and those the gateway found on storing (ts_shared): summed from the hours'
    facts over the rolled days, one query; matched in the raw readings of the rest."""
    by_node = {s.node: s for s in sections}
    rolled, raw = log.facts()
    totals: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    if rolled is not None:
        names = [f.value for f in Flag] + [g.value for g in GatewayFlag]
        selects: list[tuple[Total, str]] = [("sum", f"flag_{f}") for f in names]
        for row in log.reader.rollup_totals(rolled, "1h", selects, trace=log.trace("flags")):
            for f in names:
                totals[str(row["node"])][f] += int(row.get(f"sum_flag_{f}") or 0)
    for span in raw:
        for flag in Flag:
            rows = log.reader.aggregate(span, "seq", ["count"], flag=flag.value, trace=log.trace("flags"))
            for row in rows:
                totals[str(row["node"])][flag.value] += int(row["count"] or 0)
        for gflag in GatewayFlag:  # what the gateway found on storing (ts_shared), beside the node's own
            rows = log.reader.aggregate(
                span, "seq", ["count"], gateway_flag=gflag.value, trace=log.trace("flags")
            )
            for row in rows:
                totals[str(row["node"])][gflag.value] += int(row["count"] or 0)
    for node, counts in totals.items():
        if node in by_node:
            by_node[node].flags.update({f: n for f, n in counts.items() if n})


DOWN = ("offline", "stopped")  # a node's last will, and its own word on a planned stop


def _offline(log: QueryLog, sections: list[NodeSection]) -> None:
    by_node = {s.node: s for s in sections}
    before = log.reader.status_before(log.site, log.start, trace=log.trace("status"))
    down_since: dict[str, datetime | None] = {
        node: log.start for node, state in before.items() if state in DOWN
    }
    changes = log.reader.status_changes(log.site, log.start, log.end, trace=log.trace("status"))
    for node, state, at in changes:
        if node not in by_node:
            continue
        if state in DOWN and down_since.get(node) is None:
            down_since[node] = at
        elif state == "online" and down_since.get(node) is not None:
            began = down_since[node]
            assert began is not None
            by_node[node].offline.append((began, at))
            down_since[node] = None
    for node, began in down_since.items():
        if began is not None and node in by_node:
            by_node[node].offline.append((began, None))


def _gaps(log: QueryLog, sections: list[NodeSection]) -> None:
    """No reading for longer than max(3 intervals, 10 min). Over the rolled days from the hours'
    facts (first and last reading, `seq` lost and the longest step inside the hour), reading the
    raw readings only of an hour whose longest step is itself a gap; elsewhere one column of every
    reading, node by node as the database's own text, so the loop stays in integer milliseconds."""
    rolled, raw = log.facts()
    pieces = sorted([(s.start, s) for s in raw] + ([(rolled.start, rolled)] if rolled else []))
    for section in sections:
        scan = _Scan(section, max(3 * section.interval_s, 600) * 1000, _ms(log.start))
        trace = log.trace(f"gaps:{section.node}")
        for _, piece in pieces:
            one = Span(log.site, [section.node], piece.start, piece.end)
            if piece is not rolled:
                scan.cells(log.reader.reading_cells(one, ["seq"], trace=trace))
                continue
            for end, *facts in log.reader.rollup_cells(one, "1h", list(HOUR_FACTS), trace=trace):
                time_first, time_last, seq_first, seq_last, seq_missing, gap_ms = map(int, facts)
                if gap_ms > scan.threshold:  # a gap inside the hour: its readings say where
                    hour_end = from_ms(int(end))
                    inside = Span(log.site, [section.node], hour_end - HOUR, hour_end)
                    scan.cells(log.reader.reading_cells(inside, ["seq"], trace=trace))
                    continue
                scan.step(time_first, seq_first)
                section.missing_seq += seq_missing
                scan.prev_at, scan.prev_seq = time_last, seq_last
        if _ms(log.end) - scan.prev_at > scan.threshold:
            _add_gap(section, from_ms(scan.prev_at), log.end, 0)


HOUR_FACTS = ("time_first", "time_last", "seq_first", "seq_last", "seq_missing", "gap_ms")
HOUR = timedelta(hours=1)


class _Scan:
    """The readings of one node in time order, one step at a time."""

    def __init__(self, section: NodeSection, threshold_ms: int, start_ms: int) -> None:
        self.section, self.threshold = section, threshold_ms
        self.prev_at, self.prev_seq = start_ms, None  # type: int, int | None

    def step(self, at: int, seq: int) -> None:
        prev_seq = self.prev_seq
        missing = seq - prev_seq - 1 if prev_seq is not None and seq > prev_seq + 1 else 0
        self.section.missing_seq += missing
        if at - self.prev_at > self.threshold:
            _add_gap(self.section, from_ms(self.prev_at), from_ms(at), missing)
        self.prev_at, self.prev_seq = at, seq

    def cells(self, rows: Iterable[list[str]]) -> None:
        for at_text, seq_text in rows:
            self.step(int(at_text), int(seq_text))


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _add_gap(section: NodeSection, before: datetime, after: datetime, missing: int) -> None:
    offline = any(began < after and (ended is None or ended > before) for began, ended in section.offline)
    section.gaps.append(Gap(before, after, missing, offline))
