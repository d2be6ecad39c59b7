"""The report's offline periods: when each node was not sending, for how long, and whether the
readings of that time came in late from its outbox. Kept apart from the exceedances: a node being
offline says nothing about the air or the water."""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.report.model import Episode, NodeSection, OfflinePeriod
from gateway.report.querylog import QueryLog
from gateway.stores.reader import Span

_MS = timedelta(milliseconds=1)


def periods(log: QueryLog, nodes: list[NodeSection], episodes: list[Episode]) -> list[OfflinePeriod]:
    spans: list[tuple[str, str, datetime, datetime | None]] = [
        (n.node, "status", began, ended) for n in nodes for began, ended in n.offline
    ]
    spans += [(e.node, e.rule, e.start or log.start, e.end) for e in episodes if e.kind == "offline"]
    out = []
    for node, source, began, ended in sorted(spans, key=lambda s: (s[2], s[0], s[1])):
        until = min(ended or log.end, log.end)
        # (began, back): a reading stamped at the very moment the node went offline was sent
        # before, and one stamped as it came back was sent live
        one = Span(log.site, [node], began, until - _MS if ended is not None and ended <= log.end else until)
        rows = list(log.reader.aggregate(one, "seq", ["count"], per_node=False, trace=log.trace("offline")))
        inside = int(rows[0]["count"]) if rows and rows[0].get("count") is not None else 0
        out.append(OfflinePeriod(node, source, began, ended, until, inside))
    return out
