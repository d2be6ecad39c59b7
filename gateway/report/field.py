"""The report's field records: the maintenance visits of the period (made in it, or marking readings
in it), each with the readings of the period its marked window holds, so a regulator judging a
step in a series sees the visit that explains it, and the residents' observations a monitor
accepted (both read from InfluxDB, their queries printed)."""

from __future__ import annotations

from datetime import datetime

from gateway import maintenance
from gateway.observations import records
from gateway.observations.records import Observation
from gateway.report.model import FieldVisit
from gateway.report.querylog import QueryLog
from gateway.stores.reader import Span


def visits(log: QueryLog) -> list[FieldVisit]:
    """The visits made in the period and those marking readings in it (maintenance.of_period), each
    with the number of its marked readings that lie in the period."""
    out = []
    for v in maintenance.of_period(
        log.reader, log.site, log.start, log.end, log.node_filter, trace=log.trace("field")
    ):
        marked = 0
        if v.flag_from is not None and v.flag_to is not None:
            marked = _count(log, v.node, max(v.flag_from, log.start), min(v.flag_to, log.end))
        out.append(FieldVisit(v.node, v.kind, v.at, v.by, v.note, v.flag_from, v.flag_to, marked))
    return out


def observations(log: QueryLog) -> list[Observation]:
    """The accepted observations made in the period at the site's nodes, and those given only as
    a position (a gateway serves one site's residents); with nodes asked for, only theirs."""
    return records.listed(
        log.reader,
        "accepted",
        log.start,
        log.end,
        site=log.site,
        nodes=log.node_filter,
        trace=log.trace("field"),
    )


def _count(log: QueryLog, node: str, start: datetime, end: datetime) -> int:
    rows = list(
        log.reader.aggregate(
            Span(log.site, [node], start, end), "seq", ["count"], per_node=False, trace=log.trace("field")
        )
    )
    return int(rows[0]["count"]) if rows and rows[0].get("count") is not None else 0
