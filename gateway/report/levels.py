"""Per metric and node: daily means against the standards' 24-hour limits, the highest reading,
and the hourly means the plot draws (over a long period, the band of them it draws)."""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta

from contract.metrics import Metric
from gateway.report.model import DAY, Band, DailyMean, Episode, HourlyMeans, MetricSection, NodeSection
from gateway.report.plots import DENSE
from gateway.report.querylog import QueryLog
from gateway.standards import Standard
from gateway.stores.reader import Aggregate, Row, Span, Total
from gateway.stores.rollups import Period
from gateway.timerange import from_ms

HOUR = timedelta(hours=1)
HOUR_MS = 3_600_000


def metric_sections(
    log: QueryLog,
    metrics: list[Metric],
    standards: list[Standard],
    nodes: list[NodeSection],
    episodes: list[Episode],
) -> list[MetricSection]:
    intervals = {n.node: n.interval_s for n in nodes}
    hours = -(-(log.end - log.start) // HOUR)
    per = hours // DENSE + 1 if hours > DENSE else 0  # hours a pixel of the plot spans
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
        bands = _bands(log, m, per, f"hourly:{m}") if per else {}
        for row in () if per else _buckets(log, m, ["mean"], "1h", f"hourly:{m}", ordered=False):
            if row["mean"] is not None:
                hourly[str(row["node"])].append((row["start"] + HOUR, float(row["mean"])))
        # kept as two arrays: a month of fifty nodes is 36,000 hours a metric
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
                    bands.get(node, Band(per)) if per else None,
                )
            )
    return out


def _bands(log: QueryLog, m: str, per: int, key: str) -> dict[str, Band]:
    """Per node, the lowest and highest hourly mean of each group of `per` hours whose ends lie
    in (k * per h, (k + 1) * per h] from the epoch: asked of the database over the rolled days
    (a year of fifty nodes is 43,800 rows a metric, not 438,000), folded from the raw readings'
    hourly means over the rest (the edges; the whole period without roll-ups), on the same grid."""
    width_ms = per * HOUR_MS
    groups: dict[str, dict[int, tuple[float, float]]] = defaultdict(dict)

    def offer(node: str, k: int, low: float, high: float) -> None:
        held = groups[node].get(k)
        groups[node][k] = (low, high) if held is None else (min(held[0], low), max(held[1], high))

    if log.rolled is not None:
        selects: list[tuple[Total, str]] = [("min", f"{m}_mean"), ("max", f"{m}_mean")]
        for r in log.reader.rollup_totals(log.rolled, "1h", selects, every=per * HOUR, trace=log.trace(key)):
            low, high = r.get(f"min_{m}_mean"), r.get(f"max_{m}_mean")
            if low is not None and high is not None:
                offer(str(r["node"]), (int(r["time"]) - 1) // width_ms, float(low), float(high))
    for edge in log.edges:
        for r in log.reader.aggregate(edge, m, ["mean"], bucket=HOUR, fill="none", trace=log.trace(key)):
            if r["mean"] is not None:
                hour_end = int(r["time"]) - 1 + HOUR_MS  # the label is the hour's start + 1 ms
                offer(str(r["node"]), (hour_end - 1) // width_ms, float(r["mean"]), float(r["mean"]))
    out = {}
    for node, by_k in groups.items():
        band = Band(per)
        for k in sorted(by_k):
            low, high = by_k[k]
            band.times_s.append((k * width_ms + width_ms / 2) / 1000)
            band.lows.append(low)
            band.highs.append(high)
        out[node] = band
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
