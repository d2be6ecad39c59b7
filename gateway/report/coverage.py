"""Per node: readings per day against those expected, flagged readings, offline periods and gaps.

A gap is no reading for longer than max(3 intervals, 10 min); the readings lost in it come from
`seq` (the node numbers every reading it makes), so a gap with none lost means the node was not
measuring, and one with readings lost means they never reached the database.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from contract.flags import Flag, GatewayFlag
from gateway import dataset
from gateway.report.model import DAY, Day, Gap, NodeSection
from gateway.report.querylog import QueryLog, days
from gateway.stores.reader import Span
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
    by_node = {s.node: s for s in sections}
    for flag in Flag:
        rows = log.reader.aggregate(log.span, "seq", ["count"], flag=flag.value, trace=log.trace("flags"))
        for row in rows:
            if str(row["node"]) in by_node and row["count"]:
                by_node[str(row["node"])].flags[flag.value] = int(row["count"])
    for gflag in GatewayFlag:  # what the gateway found on storing (ts_shared), beside the node's own
        rows = log.reader.aggregate(
            log.span, "seq", ["count"], gateway_flag=gflag.value, trace=log.trace("flags")
        )
        for row in rows:
            if str(row["node"]) in by_node and row["count"]:
                by_node[str(row["node"])].flags[gflag.value] = int(row["count"])


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
    """No reading for longer than max(3 intervals, 10 min). Streams one column of every reading,
    node by node as the database's own text (a year of minute data is 525,600 rows per node), so
    the loop stays in integer milliseconds."""
    start_ms, end_ms = _ms(log.start), _ms(log.end)
    for section in sections:
        threshold = max(3 * section.interval_s, 600) * 1000
        prev_at, prev_seq = start_ms, None
        one = Span(log.site, [section.node], log.start, log.end)
        for at_text, seq_text in log.reader.reading_cells(one, ["seq"], trace=log.trace("gaps")):
            at, seq = int(at_text), int(seq_text)
            missing = seq - prev_seq - 1 if prev_seq is not None and seq > prev_seq + 1 else 0
            section.missing_seq += missing
            if at - prev_at > threshold:
                _add_gap(section, from_ms(prev_at), from_ms(at), missing)
            prev_at, prev_seq = at, seq
        if end_ms - prev_at > threshold:
            _add_gap(section, from_ms(prev_at), log.end, 0)


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _add_gap(section: NodeSection, before: datetime, after: datetime, missing: int) -> None:
    offline = any(began < after and (ended is None or ended > before) for began, ended in section.offline)
    section.gaps.append(Gap(before, after, missing, offline))
