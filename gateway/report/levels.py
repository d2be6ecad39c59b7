"""Per metric and node: daily means against the standards' 24-hour limits, the highest reading,
and the hourly means the plot draws."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from contract.metrics import Metric
from gateway.report.model import DAY, DailyMean, Episode, MetricSection, NodeSection
from gateway.report.querylog import QueryLog
from gateway.standards import Standard
from gateway.timerange import from_ms

HOUR = timedelta(hours=1)


def metric_sections(
    log: QueryLog,
    metrics: list[Metric],
    standards: list[Standard],
    nodes: list[NodeSection],
    episodes: list[Episode],
) -> list[MetricSection]:
    intervals = {n.node: n.interval_s for n in nodes}
    out = []
    for metric in metrics:
        m = metric.value
        daily: dict[str, list[DailyMean]] = defaultdict(list)
        for row in log.reader.aggregate(
            log.span, m, ["mean", "count", "max"], bucket=DAY, fill="none", trace=log.trace(f"daily:{m}")
        ):
            node, day = str(row["node"]), row["start"]
            if node not in intervals or day >= log.end:
                continue
            daily[node].append(
                DailyMean(
                    day,
                    None if row["mean"] is None else float(row["mean"]),
                    int(row["count"] or 0),
                    round(86400 / intervals[node]),  # a 24-hour mean needs a whole day's share
                    None if row["max"] is None else float(row["max"]),
                )
            )
        peaks = {
            str(r["node"]): (float(r["max"]), from_ms(int(r["time"])))
            for r in log.reader.aggregate(log.span, m, ["max"], trace=log.trace("max"))
            if r["max"] is not None
        }
        hourly: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
        for row in log.reader.aggregate(
            log.span, m, ["mean"], bucket=HOUR, fill="none", trace=log.trace(f"hourly:{m}")
        ):
            if row["mean"] is not None:
                hourly[str(row["node"])].append((row["start"] + HOUR, float(row["mean"])))
        limits = [
            (s, lim) for s in standards for lim in s.limits if lim.metric is metric and lim.average == "24h"
        ]
        for node in sorted(daily):
            out.append(
                MetricSection(
                    node,
                    metric,
                    daily[node],
                    limits,
                    peaks.get(node),
                    hourly[node],
                    [e for e in episodes if e.node == node and e.metric == metric.value],
                )
            )
    return out
