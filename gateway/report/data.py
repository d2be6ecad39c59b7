"""Everything the regulators' report shows, queried from InfluxDB, each table with its InfluxQL.

Each section keeps the exact queries that produced it (times written out, nothing hidden), so the
report can print them and a regulator can paste them into the `influx` shell and get the same
numbers. Daily periods follow gateway.influxql: readings with start < time <= end, buckets
`GROUP BY time(24h, 1ms)`. Nothing here renders; see gateway.report.render.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from gateway import dataset
from gateway import influxql as q
from gateway.schema import Flag
from gateway.standards import STANDARDS, Limit, Standard
from hardware.base import Metric

COMPLETE = 0.75
"""A period mean counts only when it holds this share of the expected readings (the usual rule)."""
DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class Day:
    start: datetime
    readings: int
    expected: int

    @property
    def completeness(self) -> float:
        return min(1.0, self.readings / self.expected) if self.expected else 0.0


@dataclass(frozen=True, slots=True)
class Gap:
    start: datetime  # last reading before (or the period start)
    end: datetime  # first reading after (or the period end)
    missing_seq: int  # readings the node made but the database lacks (lost, not offline)
    offline: bool  # the node reported itself offline during the gap


@dataclass
class NodeSection:
    node: str
    interval_s: int
    days: list[Day] = field(default_factory=list)
    flags: dict[str, int] = field(default_factory=dict)
    gaps: list[Gap] = field(default_factory=list)
    missing_seq: int = 0
    offline: list[tuple[datetime, datetime | None]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class DailyMean:
    start: datetime
    mean: float | None
    count: int
    expected: int
    max: float | None

    @property
    def completeness(self) -> float:
        return min(1.0, self.count / self.expected) if self.expected else 0.0

    @property
    def is_complete(self) -> bool:
        return self.completeness >= COMPLETE


@dataclass
class MetricSection:
    node: str
    metric: Metric
    daily: list[DailyMean]
    limits: list[tuple[Standard, Limit]]
    max_reading: tuple[float, datetime] | None
    hourly: list[tuple[datetime, float]]
    episodes: list[Episode]

    def days_over(self, limit: Limit) -> list[DailyMean]:
        """Complete days whose mean is above the limit (an incomplete day is not judged)."""
        return [d for d in self.daily if d.is_complete and d.mean is not None and d.mean > limit.value]

    @property
    def incomplete_days(self) -> int:
        return sum(1 for d in self.daily if not d.is_complete)

    @property
    def max_daily(self) -> DailyMean | None:
        complete = [d for d in self.daily if d.is_complete and d.mean is not None]
        return max(complete, key=lambda d: d.mean or 0.0) if complete else None


@dataclass(frozen=True, slots=True)
class Episode:
    """One exceedance from the `alert` measurement: raised … cleared for one rule at one node."""

    node: str
    rule: str
    metric: str
    start: datetime | None  # None: raised before the report period
    end: datetime | None  # None: still active at the end of the period
    peak: float | None
    limit: float | None
    average: str
    severity: str
    late: bool


@dataclass(frozen=True, slots=True)
class Calibration:
    node: str
    metric: str
    cal: str
    first: datetime
    last: datetime
    readings: int


@dataclass
class ReportData:
    site: str
    start: datetime
    end: datetime
    generated: datetime
    standards: list[Standard]
    nodes: list[NodeSection]
    metrics: list[MetricSection]
    episodes: list[Episode]
    calibrations: list[Calibration]
    uncalibrated: dict[tuple[str, str], int]
    firmware: list[tuple[str, str, datetime]]  # node, version, first seen
    signatures: dict[str, tuple[int, int]] | None  # node -> (signed, readings); None: no such field
    has_status: bool
    has_alerts: bool
    queries: dict[str, list[str]] = field(default_factory=dict)  # section key -> InfluxQL


def _days(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """The UTC days (clipped to the period) that the period touches."""
    first = start.replace(hour=0, minute=0, second=0, microsecond=0)
    out = []
    day = first
    while day < end:
        out.append((max(day, start), min(day + DAY, end)))
        day += DAY
    return out


class _Collector:
    def __init__(
        self,
        reader: dataset.Reader,
        site: str,
        start: datetime,
        end: datetime,
        nodes: list[str],
        interval_s: int | None,
    ) -> None:
        self.reader, self.site, self.start, self.end = reader, site, start, end
        self.node_filter = nodes
        self.interval_override = interval_s
        self.where = q.where(site, nodes, start, end)
        self.queries: dict[str, list[str]] = defaultdict(list)

    def run(self, key: str, influxql: str) -> list[dict[str, Any]]:
        self.queries[key].append(influxql)
        return self.reader.query(influxql)

    def stream(self, key: str, influxql: str) -> Any:
        self.queries[key].append(influxql)
        return self.reader.stream(influxql)

    def expected(self, interval_s: int, day_start: datetime) -> int:
        lo, hi = max(day_start, self.start), min(day_start + DAY, self.end)
        return max(0, round((hi - lo).total_seconds() / interval_s))

    # --- per node -------------------------------------------------------------------------------

    def node_sections(self, has_status: bool) -> list[NodeSection]:
        counts: dict[str, dict[datetime, int]] = defaultdict(dict)
        for row in self.run(
            "completeness",
            f'SELECT count("seq") FROM "reading" WHERE {self.where} GROUP BY time(24h, 1ms), "node" fill(0)',
        ):
            counts[str(row["node"])][q.bucket_start(int(row["time"]))] = int(row["count"] or 0)
        names = sorted(set(counts) | set(self.node_filter))
        sections = []
        for node in names:
            interval = self.interval_override or dataset.interval_s(
                self.reader, self.site, node, self.start, self.end
            )
            section = NodeSection(node, interval)
            for lo, _hi in _days(self.start, self.end):
                day = lo.replace(hour=0, minute=0, second=0, microsecond=0)
                section.days.append(Day(day, counts[node].get(day, 0), self.expected(interval, day)))
            sections.append(section)
        self._flags(sections)
        if has_status:
            self._offline(sections)
        self._gaps(sections)
        return sections

    def _flags(self, sections: list[NodeSection]) -> None:
        by_node = {s.node: s for s in sections}
        for flag in Flag:
            rows = self.run(
                "flags",
                f'SELECT count("seq") FROM "reading" WHERE {self.where} '
                f'AND "flags" =~ /(^|,){flag.value}(,|$)/ GROUP BY "node"',
            )
            for row in rows:
                if str(row["node"]) in by_node and row["count"]:
                    by_node[str(row["node"])].flags[flag.value] = int(row["count"])

    def _offline(self, sections: list[NodeSection]) -> None:
        by_node = {s.node: s for s in sections}
        site = q.string(self.site)
        before = self.run(
            "status",
            f'SELECT last("state") FROM "node_status" WHERE "site" = {site} '
            f'AND time <= {q.time_literal(self.start)} GROUP BY "node"',
        )
        down_since: dict[str, datetime | None] = {
            str(r["node"]): self.start for r in before if r.get("last") == "offline"
        }
        rows = self.run(
            "status",
            f'SELECT "state" FROM "node_status" WHERE "site" = {site} '
            f"AND time > {q.time_literal(self.start)} AND time <= {q.time_literal(self.end)} "
            'GROUP BY "node"',
        )
        for row in rows:
            node, state, at = str(row["node"]), row.get("state"), q.from_ms(int(row["time"]))
            if node not in by_node:
                continue
            if state == "offline" and down_since.get(node) is None:
                down_since[node] = at
            elif state == "online" and down_since.get(node) is not None:
                began = down_since[node]
                assert began is not None
                by_node[node].offline.append((began, at))
                down_since[node] = None
        for node, began in down_since.items():
            if began is not None and node in by_node:
                by_node[node].offline.append((began, None))

    def _gaps(self, sections: list[NodeSection]) -> None:
        """No reading for longer than max(3 intervals, 10 min). Streams one column of every reading,
        so the loop stays in integer milliseconds (a year of minute data is 525,600 rows per node)."""
        by_node = {s.node: s for s in sections}
        threshold = {s.node: max(3 * s.interval_s, 600) * 1000 for s in sections}
        start_ms, end_ms = _ms(self.start), _ms(self.end)
        last: dict[str, tuple[int, int | None]] = {s.node: (start_ms, None) for s in sections}
        for row in self.stream("gaps", f'SELECT "seq" FROM "reading" WHERE {self.where} GROUP BY "node"'):
            node = row["node"]
            if node not in by_node:
                continue
            at, seq = int(row["time"]), int(row["seq"])
            prev_at, prev_seq = last[node]
            missing = seq - prev_seq - 1 if prev_seq is not None and seq > prev_seq + 1 else 0
            by_node[node].missing_seq += missing
            if at - prev_at > threshold[node]:
                _add_gap(by_node[node], q.from_ms(prev_at), q.from_ms(at), missing)
            last[node] = (at, seq)
        for node, (prev_at, _) in last.items():
            if end_ms - prev_at > threshold[node]:
                _add_gap(by_node[node], q.from_ms(prev_at), self.end, 0)

    # --- per metric -----------------------------------------------------------------------------

    def metric_sections(
        self,
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
            for row in self.run(
                f"daily:{metric.value}",
                f'SELECT mean({m}), count({m}), max({m}) FROM "reading" WHERE {self.where} '
                f'GROUP BY time(24h, 1ms), "node" fill(none)',
            ):
                node, day = str(row["node"]), q.bucket_start(int(row["time"]))
                if node not in intervals or day >= self.end:
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
                for r in self.run("max", f'SELECT max({m}) FROM "reading" WHERE {self.where} GROUP BY "node"')
                if r["max"] is not None
            }
            hourly: dict[str, list[tuple[datetime, float]]] = defaultdict(list)
            for row in self.stream(
                f"hourly:{metric.value}",
                f'SELECT mean({m}) FROM "reading" WHERE {self.where} '
                'GROUP BY time(1h, 1ms), "node" fill(none)',
            ):
                if row["mean"] is not None:
                    hourly[str(row["node"])].append(
                        (q.bucket_start(int(row["time"])) + timedelta(hours=1), float(row["mean"]))
                    )
            limits = [
                (s, lim)
                for s in standards
                for lim in s.limits
                if lim.metric is metric and lim.average == "24h"
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

    # --- alerts and provenance ------------------------------------------------------------------

    def episodes(self) -> list[Episode]:
        fields = ", ".join(q.ident(f) for f in ("state", "value", "limit", "average", "severity", "late"))
        rows = self.run(
            "alerts",
            f'SELECT {fields} FROM "alert" WHERE "site" = {q.string(self.site)} AND time > '
            f"{q.time_literal(self.start)} AND time <= {q.time_literal(self.end)} "
            'GROUP BY "node", "rule", "metric"',
        )
        rows.sort(key=lambda r: (r["node"], r["rule"], r["metric"], r["time"]))
        out: list[Episode] = []
        open_: dict[tuple[str, str, str], dict[str, Any]] = {}
        for row in rows:
            key = (str(row["node"]), str(row["rule"]), str(row["metric"]))
            if self.node_filter and key[0] not in self.node_filter:
                continue
            at = q.from_ms(int(row["time"]))
            value = None if row.get("value") is None else float(row["value"])
            episode = open_.get(key)
            if episode is None or row.get("state") == "raised":
                if episode is not None:  # raised twice without a clear: close the first at the second
                    out.append(_episode(key, episode, at))
                episode = {"start": at if row.get("state") == "raised" else None, "peak": value, "row": row}
                open_[key] = episode
            elif value is not None and row.get("state") != "cleared":
                episode["peak"] = value if episode["peak"] is None else max(episode["peak"], value)
            if row.get("state") == "cleared":
                out.append(_episode(key, episode, at))
                del open_[key]
        out += [_episode(key, episode, None) for key, episode in open_.items()]
        return sorted(out, key=lambda e: (e.start or self.start, e.node, e.rule))

    def calibrations(self, metrics: list[Metric]) -> tuple[list[Calibration], dict[tuple[str, str], int]]:
        cals: list[Calibration] = []
        uncalibrated: dict[tuple[str, str], int] = {}
        for metric in metrics:
            col = q.ident(f"{metric.value}_cal")
            ids = self.run(
                "calibrations", f'SELECT DISTINCT({col}) FROM "reading" WHERE {self.where} GROUP BY "node"'
            )
            totals = {
                str(r["node"]): int(r["count"])
                for r in self.run(
                    "calibrations",
                    f'SELECT count({q.ident(metric.value + "_n")}) FROM "reading" '
                    f'WHERE {self.where} GROUP BY "node"',
                )
            }
            calibrated: dict[str, int] = defaultdict(int)
            for row in ids:
                node, cal = str(row["node"]), str(row["distinct"])
                where = f"{q.where(self.site, [node], self.start, self.end)} AND {col} = {q.string(cal)}"
                first = self.run("calibrations", f'SELECT first({col}) FROM "reading" WHERE {where}')
                last = self.run("calibrations", f'SELECT last({col}) FROM "reading" WHERE {where}')
                count = self.run("calibrations", f'SELECT count({col}) FROM "reading" WHERE {where}')
                n = int(count[0]["count"])
                cals.append(
                    Calibration(
                        node,
                        metric.value,
                        cal,
                        q.from_ms(int(first[0]["time"])),
                        q.from_ms(int(last[0]["time"])),
                        n,
                    )
                )
                calibrated[node] += n
            for node, total in totals.items():
                uncalibrated[(node, metric.value)] = total - calibrated[node]
        return cals, uncalibrated

    def firmware(self) -> list[tuple[str, str, datetime]]:
        rows = self.run(
            "firmware",
            f'SELECT "version" FROM "node_status" WHERE "site" = {q.string(self.site)} AND '
            f'time <= {q.time_literal(self.end)} AND "version" != \'\' GROUP BY "node"',
        )
        seen: dict[tuple[str, str], datetime] = {}
        for row in rows:
            key = (str(row["node"]), str(row["version"]))
            if (not self.node_filter or key[0] in self.node_filter) and key not in seen:
                seen[key] = q.from_ms(int(row["time"]))
        return [(node, version, at) for (node, version), at in seen.items()]

    def signatures(self) -> dict[str, tuple[int, int]]:
        totals = self.run(
            "signatures", f'SELECT count("seq") FROM "reading" WHERE {self.where} GROUP BY "node"'
        )
        signed = self.run(
            "signatures",
            f'SELECT count("seq") FROM "reading" WHERE {self.where} AND "signed" = true GROUP BY "node"',
        )
        s = {str(r["node"]): int(r["count"]) for r in signed}
        return {str(r["node"]): (s.get(str(r["node"]), 0), int(r["count"])) for r in totals}


def _ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def _add_gap(section: NodeSection, before: datetime, after: datetime, missing: int) -> None:
    offline = any(began < after and (ended is None or ended > before) for began, ended in section.offline)
    section.gaps.append(Gap(before, after, missing, offline))


def _episode(key: tuple[str, str, str], episode: dict[str, Any], end: datetime | None) -> Episode:
    row = episode["row"]
    return Episode(
        node=key[0],
        rule=key[1],
        metric=key[2],
        start=episode["start"],
        end=end,
        peak=episode["peak"],
        limit=None if row.get("limit") is None else float(row["limit"]),
        average=str(row.get("average") or ""),
        severity=str(row.get("severity") or ""),
        late=bool(row.get("late")),
    )


def collect(
    reader: dataset.Reader,
    *,
    site: str,
    start: datetime,
    end: datetime,
    generated: datetime,
    standards: list[str],
    metrics: list[Metric] | None = None,
    nodes: list[str] | None = None,
    interval_s: int | None = None,
) -> ReportData:
    """Query everything the report shows. `metrics` defaults to those stored among PM2.5, PM10 and
    turbidity (the ones the report has limits or a purpose for); name others to include them."""
    c = _Collector(reader, site, start, end, nodes or [], interval_s)
    present = dataset.measurements(reader)
    has_status, has_alerts = "node_status" in present, "alert" in present
    stored = dataset.metrics_stored(reader) if "reading" in present else []
    if metrics is None:
        metrics = [m for m in stored if m in (Metric.PM2_5, Metric.PM10, Metric.TURBIDITY)]
    chosen = [STANDARDS[k] for k in standards]
    node_sections = c.node_sections(has_status) if "reading" in present else []
    episodes = c.episodes() if has_alerts else []
    metric_sections = c.metric_sections(metrics, chosen, node_sections, episodes) if node_sections else []
    cals, uncalibrated = c.calibrations(metrics) if node_sections else ([], {})
    firmware = c.firmware() if has_status else []
    signatures = (
        c.signatures() if "reading" in present and "signed" in dataset.field_keys(reader, "reading") else None
    )
    return ReportData(
        site=site,
        start=start,
        end=end,
        generated=generated,
        standards=chosen,
        nodes=node_sections,
        metrics=metric_sections,
        episodes=episodes,
        calibrations=cals,
        uncalibrated=uncalibrated,
        firmware=firmware,
        signatures=signatures,
        has_status=has_status,
        has_alerts=has_alerts,
        queries=dict(c.queries),
    )
