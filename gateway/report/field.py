"""The report's field records: the maintenance visits of the period, each with the readings its
marked window holds, so a regulator judging a step in a series sees the visit that explains it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from gateway import maintenance
from gateway.observations.store import Observation
from gateway.report.model import FieldVisit
from gateway.report.querylog import QueryLog
from gateway.stores.reader import Span


def visits(log: QueryLog) -> list[FieldVisit]:
    out = []
    for v in maintenance.visits(
        log.reader, log.site, log.start, log.end, log.node_filter, trace=log.trace("field")
    ):
        marked = 0
        if v.flag_from is not None and v.flag_to is not None:
            marked = _count(log, v.node, v.flag_from, v.flag_to)
        out.append(FieldVisit(v.node, v.kind, v.at, v.by, v.note, v.flag_from, v.flag_to, marked))
    return out


def observations(
    accepted: Iterable[Observation], site: str, start: datetime, end: datetime, nodes: list[str]
) -> list[Observation]:
    """The accepted observations made in (start, end] at the site's nodes, and those given only as
    a position (a gateway serves one site's residents); with `nodes`, only those at the nodes."""
    return [
        o
        for o in accepted
        if start < o.at <= end
        and (o.site == site if nodes else o.site in (site, None))
        and (not nodes or o.node in nodes)
    ]


def _count(log: QueryLog, node: str, start: datetime, end: datetime) -> int:
    rows = list(
        log.reader.aggregate(
            Span(log.site, [node], start, end), "seq", ["count"], per_node=False, trace=log.trace("field")
        )
    )
    return int(rows[0]["count"]) if rows and rows[0].get("count") is not None else 0
