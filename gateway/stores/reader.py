"""The read seam: what export, report, dashboard, alert restart and `verify` ask of the database.

Callers name what they want (a site, nodes, metrics, a period, a bucket size) and never write query
text; each backend turns the request into its own language, and lets the database aggregate. Every
range is `start < time <= end`, because a reading's time is the END of its averaging window; buckets
are (t, t + bucket] likewise. A method given `trace` calls it with the text of each query it runs, so
the report can print "the query behind this table" in the backend's own words.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol

Row = dict[str, Any]
"""One stored point: `time` (epoch ms), its tags (`site`, `node`, ...) and the fields asked for."""

Trace = Callable[[str], None]
Aggregate = Literal["mean", "count", "max", "first", "last", "distinct"]
Fill = Literal["zero", "none"]
Total = Literal["sum", "min", "max", "count", "distinct"]


CLOCK_READINGS = 2000
"""How many of a node's first readings `Reader.reading_clock` answers with."""


@dataclass(frozen=True, slots=True)
class Span:
    """A site's readings in (start, end]; `nodes` empty: every node."""

    site: str
    nodes: list[str]
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class Latest:
    site: str
    node: str
    time: datetime
    seq: int | None
    values: dict[str, float]  # metric -> calibrated value; a null (failed) metric is absent
    flags: list[str]


@dataclass(frozen=True, slots=True)
class Series:
    every_s: int
    times: list[datetime]  # the start of each bucket (t, t + every_s]
    values: dict[str, list[float | None]]  # metric -> mean per bucket, None for an empty bucket


@dataclass(frozen=True, slots=True)
class AlertEvent:
    time: datetime
    site: str
    node: str
    rule: str
    metric: str
    state: str
    severity: str | None
    value: float | None
    limit: float | None
    average: str | None
    late: bool
    message: str | None  # the English rendering, as stored
    tags: dict[str, str] = field(default_factory=dict)  # any further tags the alert engine adds
    msg_id: str | None = None  # absent from events stored before message ids
    msg_params: str | None = None  # JSON, as the `alert` measurement keeps it
    peak: float | None = None  # the worst value of the alert so far
    started: datetime | None = None  # when the condition began
    ended: datetime | None = None  # when it ended: the first evaluation back within (`cleared` only)
    alert_id: str | None = None  # shared by every event of one alert; what `ack` takes (absent before ids)
    acked_by: str | None = None  # who acknowledged it (from the `acknowledged` event on)
    unit: str | None = None  # of value, limit and peak ("min" for offline and faults); absent before


Comparison = Literal["eq", "ne", "gt", "ge", "lt", "le"]


@dataclass(frozen=True, slots=True)
class Compare:
    """A reading's `time` (an aware datetime) or its metric's `value` (a finite float) against a
    literal; a reading whose value is null (a failed metric) matches no `value` comparison."""

    subject: Literal["time", "value"]
    op: Comparison
    operand: datetime | float


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[Condition, ...]


@dataclass(frozen=True, slots=True)
class Negation:
    part: Condition


Condition = Compare | AllOf | AnyOf | Negation
"""A filter on one metric's readings, built by a caller from what a visitor asked (SensorThings
`$filter`), never query text: each backend renders it in its own language."""


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """One node's record of one metric: its first and last reading and the calibration of the last."""

    site: str
    node: str
    metric: str
    first: datetime
    last: datetime
    cal: str | None


@dataclass(frozen=True, slots=True)
class NodeColumns:
    """One node's recent readings as columns: `time` (epoch ms, oldest first) and, per field asked
    for, the values in the same order (None where a reading has none)."""

    site: str
    node: str
    time: list[int]
    columns: dict[str, list[Any]]


def node_columns(rows: Iterator[Row], fields: list[str]) -> Iterator[NodeColumns]:
    """`NodeColumns` from rows that come one node after another, each in time order."""
    key: tuple[str, str] | None = None
    times: list[int] = []
    columns: dict[str, list[Any]] = {}
    for row in rows:
        site, node = str(row.get("site")), str(row.get("node"))
        if (site, node) != key:
            if key is not None:
                yield NodeColumns(*key, times, columns)
            key, times, columns = (site, node), [], {f: [] for f in fields}
        times.append(int(row["time"]))
        for f in fields:
            columns[f].append(row.get(f))
    if key is not None:
        yield NodeColumns(*key, times, columns)


@dataclass(frozen=True, slots=True)
class ObservationQuery:
    """One page of one node's readings of one metric in (start, end] that meet `condition`."""

    site: str
    node: str
    metric: str
    start: datetime
    end: datetime
    condition: Condition | None = None
    newest_first: bool = False
    limit: int = 100
    offset: int = 0


class Reader(Protocol):
    # what is stored
    def measurements(self) -> set[str]: ...

    def fields(self, measurement: str) -> set[str]: ...

    def metric_fields(self) -> list[str]:
        """Metrics stored at all, in the contract's order, so requests name only existing fields."""

    def reading_clock(self, site: str, node: str, start: datetime, end: datetime) -> list[Row]:
        """The node's first CLOCK_READINGS readings in the range, oldest first: `time`, `seq`,
        `period_s`."""

    # rows, streamed
    def readings(
        self, span: Span, fields: list[str], *, per_node: bool = False, trace: Trace | None = None
    ) -> Iterator[Row]:
        """Every reading in the span with these fields, in time order (per node when `per_node`)."""

    def reading_cells(
        self, span: Span, fields: list[str], *, trace: Trace | None = None
    ) -> Iterator[list[str]]:
        """`readings` as the database's own text, for exports at its speed: per reading a list of
        cells, `time` (epoch ms) then `fields` in order, an absent value empty, numbers as the
        database writes them (a float in its shortest exact form, "12" for 12.0), in time order."""

    def period_means(
        self, span: Span, metrics: list[str], bucket: timedelta, *, trace: Trace | None = None
    ) -> Iterator[Row]:
        """Per node and bucket: `node`, `start` (datetime), `<m>_mean`, `<m>_count`; empty buckets
        are left out."""

    def recent(self, fields: list[str], seconds: int, *, per_node: bool = False) -> Iterator[Row]:
        """Every site's readings of the last `seconds` by the database's clock (the alert restart);
        with `per_node`, one node's after another, each in time order."""

    def recent_nodes(self, fields: list[str], seconds: int) -> Iterator[NodeColumns]:
        """`recent(fields, seconds, per_node=True)` as columns, one node at a time: what the alerts'
        first start reads (a day of 1,000 nodes is 1.5 million readings; a dict per row was most
        of its time in Python)."""

    def stored_readings(self, span: Span) -> Iterator[Row]:
        """Whole readings (every field) in the span, oldest first: the hub forwarder's backfill."""

    def first_reading_time(self, site: str) -> datetime | None:
        """When the site's oldest stored reading was taken; None when it has none."""

    def signed_rows(self, condition: str = "") -> Iterator[Row]:
        """Whole readings for `verify`; `condition` is the backend's own filter as the user typed it."""

    # aggregates (the report)
    def aggregate(
        self,
        span: Span,
        column: str,
        functions: list[Aggregate],
        *,
        bucket: timedelta | None = None,
        fill: Fill | None = None,
        per_node: bool = True,
        flag: str | None = None,
        gateway_flag: str | None = None,
        signed: bool = False,
        equals: str | None = None,
        trace: Trace | None = None,
    ) -> Iterator[Row]:
        """`functions` of `column` over the span, per node and per bucket when given, streamed (a
        year of hourly means for fifty nodes is 440,000 rows). Rows have
        `node`, `time` (epoch ms: the bucket's label, or the point's for max/first/last), `start`
        (the bucket's start, with `bucket`) and one key per function. Only readings carrying `flag`,
        signed ones, or those whose `column` equals `equals`, when given."""

    def rollups(
        self,
        span: Span,
        period: Literal["1h", "1d"],
        fields: list[str],
        *,
        equals: tuple[str, str] | None = None,
        trace: Trace | None = None,
    ) -> Iterator[Row]:
        """The stored roll-ups (gateway/stores/rollups.py) of the buckets that lie in the span, per
        node in time order: `node`, `start` (the bucket's start, datetime), `time` (epoch ms of its
        end) and `fields` (`pm2_5_mean`, `readings`, ...). Buckets without readings are absent.
        With `equals` (a string field, a value), only the buckets where the field has the value."""

    def rollup_cells(
        self, span: Span, period: Literal["1h", "1d"], fields: list[str], *, trace: Trace | None = None
    ) -> Iterator[list[str]]:
        """`rollups` of one node (the span's only node) as the database's own text: per bucket a
        list of cells, `time` (epoch ms of its end) then `fields`, an absent value empty, in time
        order. The report's gaps read a year of a node's hours (8,760) this way, not a dict each."""

    def rollup_totals(
        self,
        span: Span,
        period: Literal["1h", "1d"],
        selects: list[tuple[Total, str]],
        *,
        per_node: bool = True,
        equals: tuple[str, str] | None = None,
        every: timedelta | None = None,
        trace: Trace | None = None,
    ) -> Iterator[Row]:
        """`function(field)` over the stored roll-ups of the buckets in the span, by the database
        (a year of fifty nodes' hours is 438,000 points): per node (or not) a row with `node`,
        `time` (epoch ms: the bucket's end for a lone `max`/`min`, the one it was found in) and a
        key `<function>_<field>` per select. With `equals`, only the buckets where it holds. With
        `every`, a row per group of buckets whose ends lie in (k * every, (k + 1) * every] from
        the epoch, `start` its k * every (groups without buckets are absent): what the report's
        plot draws of a year's hours, a ninth of the rows."""

    def status_before(self, site: str, at: datetime, *, trace: Trace | None = None) -> dict[str, str]:
        """Each node's last state (`online`/`offline`) at or before `at`."""

    def status_changes(
        self, site: str, start: datetime, end: datetime, *, trace: Trace | None = None
    ) -> list[tuple[str, str | None, datetime]]:
        """(node, state, time) of every status the nodes published in (start, end]."""

    def firmware(
        self, site: str, end: datetime, *, trace: Trace | None = None
    ) -> list[tuple[str, str, datetime]]:
        """(node, version, time) of every status with a version up to `end`, oldest first per node."""

    def alert_rows(
        self, site: str, start: datetime, end: datetime, fields: list[str], *, trace: Trace | None = None
    ) -> list[Row]:
        """The site's `alert` events in (start, end] with these fields and `node`, `rule`, `metric`."""

    def maintenance_rows(
        self,
        site: str | None,
        nodes: list[str],
        start: datetime,
        end: datetime,
        *,
        trace: Trace | None = None,
    ) -> list[Row]:
        """The site's `maintenance` visits in (start, end] (every site's when None, all nodes when
        `nodes` is empty), every
        field with `site`, `node` and `kind` (gateway.maintenance reads them)."""

    def observation_rows(
        self,
        site: str | None,
        start: datetime,
        end: datetime,
        *,
        ids: list[str] | None = None,
        trace: Trace | None = None,
    ) -> list[Row]:
        """Residents' `observation` points seen in (start, end]: at the site's nodes and those
        with no site (a position only) when `site` is given, only `ids` when given; every field
        with the tags `id`, `kind`, `site`, `node` (gateway.observations.records reads them)."""

    def decision_rows(
        self,
        start: datetime,
        end: datetime,
        *,
        ids: list[str] | None = None,
        trace: Trace | None = None,
    ) -> list[Row]:
        """The monitors' `observation_decision` points made in (start, end] (on `ids` only when
        given): tags `id`, `decision`, fields `by`, `why`."""

    # the dashboard
    def nodes(self, site: str | None = None) -> list[tuple[str, str]]:
        """(site, node) of every node with stored readings, sorted, without reading any of them."""

    def latest(self, now: datetime, *, site: str | None = None, node: str | None = None) -> list[Latest]:
        """The last reading of every node at or before `now`, sorted by site and node. Its cost must
        not grow with the stored history: a node silent for months is still found."""

    def series(
        self,
        site: str,
        node: str,
        metrics: list[str],
        start: datetime,
        end: datetime,
        every_s: int,
        *,
        align: timedelta = timedelta(0),
    ) -> Series:
        """Means per bucket (b, b + every_s], b a multiple of every_s from the epoch plus `align`;
        empty buckets are None so charts show gaps, not lines."""

    def hourly_means(
        self,
        metric: str,
        end_hour: datetime,
        hours: int = 12,
        *,
        align: timedelta = timedelta(0),
        site: str | None = None,
        nodes: list[str] | None = None,
    ) -> dict[tuple[str, str], list[float | None]]:
        """(site, node) -> hourly means, most recent first (index 0 = the hour ending at `end_hour`);
        hours are (b, b + 1 h], b a whole hour plus `align`. Only `site` and `nodes` when given (a
        page of a thousand-node fleet asks for its own nodes only)."""

    def flagged(
        self, site: str, node: str, start: datetime, end: datetime
    ) -> list[tuple[datetime, list[str]]]:
        """Readings that carry quality flags, oldest first (at most 5000)."""

    def alerts(
        self,
        start: datetime,
        end: datetime,
        *,
        site: str | None = None,
        node: str | None = None,
        limit: int = 200,
    ) -> list[AlertEvent]:
        """Alert events, newest first."""

    def active_alerts(
        self, now: datetime, *, site: str | None = None, node: str | None = None
    ) -> list[AlertEvent]:
        """The last event of each alert series whose state is not `cleared`, newest first."""

    def csv_rows(
        self, start: datetime, end: datetime, *, site: str | None = None, node: str | None = None
    ) -> Iterator[Row]:
        """Raw stored readings, oldest first, one day at a time so memory stays flat."""

    # open data (SensorThings, gateway/web/sta/)
    def streams(self, now: datetime) -> list[StreamInfo]:
        """Every (site, node, metric) with readings at or before `now`, sorted by site, node and the
        contract's metric order."""

    def observations(self, query: ObservationQuery) -> list[Row]:
        """One page of whole stored readings (every field, `site`, `node`), ordered by time; only
        readings that carry the metric (a null value included) belong to its stream."""

    def count_observations(self, query: ObservationQuery) -> int:
        """How many readings the query's pages hold together (its limit and offset ignored)."""

    def close(self) -> None: ...
