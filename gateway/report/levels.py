"""Per metric and node: daily means against the standards' 24-hour limits, the highest reading,
and the hourly means the plot draws."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta

from contract.metrics import Metric
from gateway.report.model import DAY, DailyMean, Episode, HourlyMeans, MetricSection, NodeSection
from gateway.report.querylog import QueryLog
from gateway.standards import Standard
from gateway.stores.reader import Aggregate, Row, Span
from gateway.stores.rollups import Period
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
        for row in _buckets(log, m, ["mean", "count", "max"], "1d", f"daily:{m}"):
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
        peaks = _peaks(log, m)
        hourly: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
        for row in _buckets(log, m, ["mean"], "1h", f"hourly:{m}", ordered=False):
            if row["mean"] is not None:
                hourly[str(row["node"])].append((row["start"] + HOUR, float(row["mean"])))
        # kept as two arrays: a year of fifty nodes is 438,000 hours a metric (120 MB as tuples)
        compact = {node: HourlyMeans.of(sorted(hours)) for node, hours in hourly.items()}
        hourly.clear()
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
                    compact.get(node) or HourlyMeans(),
                    [e for e in episodes if e.node == node and e.metric == metric.value],
                )
            )
    return out


def _peaks(log: QueryLog, m: str) -> dict[str, tuple[float, datetime]]:
    """Each node's highest reading and its time (the first, when it recurs). Over the rolled days
    in two steps: the hour from the hourly maxima, then the reading from that hour's raw readings;
    so a year costs a query per node, not a pass over the year."""
    best: dict[str, tuple[float, int]] = {}

    def offer(node: str, value: float, at: int) -> None:
        held = best.get(node)
        if held is None or value > held[0] or (value == held[0] and at < held[1]):
            best[node] = (value, at)

    trace = log.trace("max")
    for edge in log.edges:
        for r in log.reader.aggregate(edge, m, ["max"], trace=trace):
            if r["max"] is not None:
                offer(str(r["node"]), float(r["max"]), int(r["time"]))
    if log.rolled is not None:
        for r in log.reader.rollup_totals(log.rolled, "1h", [("max", f"{m}_max")], trace=trace):
            if r.get(f"max_{m}_max") is None:
                continue
            node, end = str(r["node"]), from_ms(int(r["time"]))
            hour = Span(log.site, [node], end - HOUR, end)
            for top in log.reader.aggregate(hour, m, ["max"], per_node=False, trace=trace):
                if top["max"] is not None:
                    offer(node, float(top["max"]), int(top["time"]))
    return {node: (value, from_ms(at)) for node, (value, at) in best.items()}


def _buckets(
    log: QueryLog, m: str, functions: list[Aggregate], period: Period, key: str, *, ordered: bool = True
) -> Iterator[Row]:
    """Per node and hour or day: `node`, `start` and one key per function; from the roll-ups for
    whole days when the log says so (QueryLog.use_rollups), from the raw readings for the rest.
    Sorted by node and time, as the raw query alone gave them, unless not `ordered` (streamed:
    the caller sorts what it keeps)."""
    rows: Iterator[Row] = iter(())
    if log.rolled is not None:
        fields = [f"{m}_{f}" for f in functions]
        rolled = log.reader.rollups(log.rolled, period, fields, trace=log.trace(key))
        rows = (
            {"node": r["node"], "start": r["start"], **{f: r.get(f"{m}_{f}") for f in functions}}
            for r in rolled
        )
    bucket = DAY if period == "1d" else HOUR
    for edge in log.edges:
        rows = itertools.chain(
            rows, log.reader.aggregate(edge, m, functions, bucket=bucket, fill="none", trace=log.trace(key))
        )
    if not ordered:
        return rows
    return iter(sorted(rows, key=lambda r: (str(r["node"]), r["start"])))
