"""Per metric and node: daily means against the standards' 24-hour limits, the highest reading,
and the hourly means the plot draws."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

from contract.metrics import Metric
from gateway import influxql as q
from gateway.report.model import DailyMean, Episode, MetricSection, NodeSection
from gateway.report.querylog import QueryLog
from gateway.standards import Standard


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
        m = q.ident(metric.value)
        daily: dict[str, list[DailyMean]] = defaultdict(list)
        for row in log.run(
            f"daily:{metric.value}",
            f'SELECT mean({m}), count({m}), max({m}) FROM "reading" WHERE {log.where} '
            f'GROUP BY time(24h, 1ms), "node" fill(none)',
        ):
            node, day = str(row["node"]), q.bucket_start(int(row["time"]))
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
            str(r["node"]): (float(r["max"]), q.from_ms(int(r["time"])))
            for r in log.run("max", f'SELECT max({m}) FROM "reading" WHERE {log.where} GROUP BY "node"')
            if r["max"] is not None
        }
        hourly: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
        for row in log.stream(
            f"hourly:{metric.value}",
            f'SELECT mean({m}) FROM "reading" WHERE {log.where} GROUP BY time(1h, 1ms), "node" fill(none)',
        ):
            if row["mean"] is not None:
                hourly[str(row["node"])].append(
                    (q.bucket_start(int(row["time"])) + timedelta(hours=1), float(row["mean"]))
                )
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
