"""Hourly and daily roll-ups of `reading` into `reading_1h` and `reading_1d`, recomputed from raw.

InfluxDB 1.x continuous queries would keep these too, but a CQ computes each interval once, when
it closes: a node's backlog arriving after an outage never reaches the hour it belongs to. So the
gateway recomputes a bucket from the raw readings, with one `GROUP BY time(1h, 1ms)` query, each
time readings land in it (gateway/rollup.py decides when), and writes one point per node and
bucket: same tags, same time, so a recomputed bucket overwrites the point before it. The roll-ups
are derived; `reading` stays the record.

Hourly points also carry what the report would otherwise scan a year of raw readings for (the
"facts", docs/protocol.md): the first and last reading's time and `seq`, the `seq` lost inside the
hour and its longest step between readings (gaps), a count per quality flag, per metric the
readings carrying it and its calibration id with that id's count and first and last use, and the
signed readings. InfluxQL has no aggregate for a step between readings or a flag in a list, so
they come from one pass over the hour's readings as the database's own CSV, in the same
recompute; a year of them is one `rollup --rebuild`, not one pass per report.

A bucket is (b, b + d] like every period here, and its point is stamped at its END, b + d, as a
reading is stamped at the end of its window: `start < time <= end` on `reading_1h` is the hours
that lie in (start, end].
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from contract.flags import Flag, GatewayFlag
from contract.metrics import Metric
from gateway.stores.base import Store
from gateway.stores.influxql import bucket_start, every, ident, string, where
from gateway.stores.reader import Row, Trace
from gateway.stores.rollups import BUCKETS, MEASUREMENTS, MIXED, Period, Recompute
from gateway.timerange import from_ms

if TYPE_CHECKING:  # influx_report's reader serves the roll-ups with rollup_rows below
    from gateway.stores.influx_report import Client

AGGREGATES = ("mean", "min", "max", "count")
METRICS: tuple[str, ...] = tuple(m.value for m in Metric)
CHUNK: dict[Period, timedelta] = {"1h": timedelta(days=7), "1d": timedelta(days=92)}
"""How much raw history one recompute query covers, so a rebuild of a year stays small in memory."""
HOUR_MS = 3_600_000
FLAGS = tuple(f.value for f in Flag)
GATEWAY_FLAGS = tuple(f.value for f in GatewayFlag)


@dataclass(slots=True)
class _Facts:
    """One node's hour, built reading by reading in time order."""

    time_first: int = 0
    time_last: int = 0
    seq_first: int = 0
    seq_last: int = 0
    seq_missing: int = 0
    gap_ms: int = 0
    seen: bool = False
    flags: dict[str, int] = field(default_factory=dict)
    signed: int = 0
    n_count: dict[str, int] = field(default_factory=dict)
    cal: dict[str, tuple[str, int, int, int]] = field(default_factory=dict)  # id, count, first, last

    def fields(self) -> list[str]:
        if not self.seen:
            return []
        out = [
            f"time_first={self.time_first}i",
            f"time_last={self.time_last}i",
            f"seq_first={self.seq_first}i",
            f"seq_last={self.seq_last}i",
            f"seq_missing={self.seq_missing}i",
            f"gap_ms={self.gap_ms}i",
        ]
        out += [f"flag_{f}={n}i" for f, n in sorted(self.flags.items())]
        if self.signed:
            out.append(f"signed_count={self.signed}i")
        for m, n in self.n_count.items():
            out.append(f"{m}_n_count={n}i")
        for m, (cal, n, first, last) in self.cal.items():
            text = cal.replace("\\", "\\\\").replace('"', '\\"')
            out += [f'{m}_cal="{text}"', f"{m}_cal_count={n}i", f"{m}_cal_first={first}i"]
            out.append(f"{m}_cal_last={last}i")
        return out


def _tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


class InfluxRollups:
    """Recompute roll-ups with InfluxQL over `client`, write them through `store`."""

    def __init__(self, client: Client, store: Store) -> None:
        self._db = client
        self._store = store
        self._keys: set[str] = set()  # the field keys of `reading`, as metric_fields last saw them

    def metric_fields(self) -> list[str]:
        keys = {str(r["fieldKey"]) for r in self._db.query('SHOW FIELD KEYS FROM "reading"')}
        self._keys = keys  # for the facts: which of flags, signed, <m>_n, <m>_cal exist
        return [m for m in METRICS if m in keys]

    def facts_text(self, job: Recompute, metrics: list[str]) -> tuple[str, list[str]]:
        """The pass over the readings behind an hour's facts: its text and its columns."""
        if not self._keys:  # recompute before metric_fields: ask, rather than miss flags and ids
            self.metric_fields()
        keys = self._keys
        columns = ["node", "seq"] + [c for c in ("flags", "gateway_flags", "signed") if c in keys]
        columns += [c for m in metrics for c in (f"{m}_n", f"{m}_cal") if c in keys]
        cond = where(job.site, job.nodes, job.start, job.end)
        return f'SELECT {", ".join(ident(c) for c in columns)} FROM "reading" WHERE {cond}', columns

    def facts(
        self, job: Recompute, metrics: list[str], trace: Trace | None = None
    ) -> dict[tuple[str, int], _Facts]:
        """(node, hour's end in ms) -> the hour's facts, from one pass over the job's readings. The
        steps and lost `seq` are counted between readings of the same hour only: the report joins
        the hours (the step from one hour's last reading to the next's first)."""
        text, columns = self.facts_text(job, metrics)
        if trace is not None:
            trace(text)
        at = {c: i + 1 for i, c in enumerate(columns)}  # cell 0 is the time
        i_seq, i_flags, i_gflags = at["seq"], at.get("flags"), at.get("gateway_flags")
        i_signed = at.get("signed")
        per_metric = [(m, at.get(f"{m}_n"), at.get(f"{m}_cal")) for m in metrics]
        out: dict[tuple[str, int], _Facts] = {}
        for cells in self._db.stream_cells(text, columns):
            t = int(cells[0])
            key = (cells[1], ((t - 1) // HOUR_MS + 1) * HOUR_MS)
            facts = out.get(key)
            if facts is None:
                facts = out[key] = _Facts()
            for m, i_n, i_cal in per_metric:
                if i_n is not None and cells[i_n]:
                    facts.n_count[m] = facts.n_count.get(m, 0) + 1
                if i_cal is not None and cells[i_cal]:
                    cal = facts.cal.get(m)
                    if cal is None:
                        facts.cal[m] = (cells[i_cal], 1, t, t)
                    else:
                        facts.cal[m] = (cal[0] if cal[0] == cells[i_cal] else MIXED, cal[1] + 1, cal[2], t)
            if not cells[i_seq]:
                continue
            seq = int(cells[i_seq])
            if facts.seen:
                facts.gap_ms = max(facts.gap_ms, t - facts.time_last)
                if seq > facts.seq_last + 1:
                    facts.seq_missing += seq - facts.seq_last - 1
            else:
                facts.seen, facts.time_first, facts.seq_first = True, t, seq
            facts.time_last, facts.seq_last = t, seq
            for i, known in ((i_flags, FLAGS), (i_gflags, GATEWAY_FLAGS)):
                if i is not None and cells[i]:
                    for flag in set(cells[i].split(",")):
                        if flag in known:
                            facts.flags[flag] = facts.flags.get(flag, 0) + 1
            if i_signed is not None and cells[i_signed] == "true":
                facts.signed += 1
        return out

    def query_text(self, job: Recompute, metrics: list[str]) -> str:
        parts = [f"{fn}({ident(m)}) AS {ident(f'{m}_{fn}')}" for m in metrics for fn in AGGREGATES]
        parts.append('count("seq") AS "readings"')
        cond = where(job.site, job.nodes, job.start, job.end)
        return (
            f'SELECT {", ".join(parts)} FROM "reading" WHERE {cond} '
            f'GROUP BY time({every(BUCKETS[job.period])}, 1ms), "node" fill(none)'
        )

    def recompute(
        self,
        job: Recompute,
        metrics: list[str],
        intervals: dict[str, int],
        *,
        trace: Trace | None = None,
        batch: int = 5000,
    ) -> int:
        """Recompute every bucket of `job` that holds readings; `intervals` (node -> reading interval
        in seconds, 60 when absent) gives each metric's completeness. Returns the points written."""
        width = BUCKETS[job.period]
        measurement = MEASUREMENTS[job.period]
        written = 0
        lines: list[str] = []
        chunk_start = job.start
        while chunk_start < job.end:
            chunk_end = min(chunk_start + CHUNK[job.period], job.end)
            part = Recompute(job.site, job.nodes, chunk_start, chunk_end, job.period)
            text = self.query_text(part, metrics)
            facts = self.facts(part, metrics, trace) if job.period == "1h" else {}
            if trace is not None:
                trace(text)
            for row in self._db.stream(text):
                line = _point(row, job.site, measurement, width, metrics, intervals, facts)
                if line is not None:
                    lines.append(line)
                if len(lines) >= batch:
                    self._store.write(lines)
                    written += len(lines)
                    lines = []
            chunk_start = chunk_end
        self._store.write(lines)
        return written + len(lines)


def _point(
    row: Row,
    site: str,
    measurement: str,
    width: timedelta,
    metrics: list[str],
    intervals: dict[str, int],
    facts: dict[tuple[str, int], _Facts],
) -> str | None:
    node = str(row["node"])
    readings = int(row.get("readings") or 0)
    fields = [f"readings={readings}i"]
    interval = intervals.get(node, 60)
    expected = width.total_seconds() / interval
    for m in metrics:
        count = int(row.get(f"{m}_count") or 0)
        if not count:
            continue
        fields.append(f"{m}_count={count}i")
        fields.append(f"{m}_completeness={round(min(1.0, count / expected), 4)!r}")
        for fn in ("mean", "min", "max"):
            value = row.get(f"{m}_{fn}")
            if value is not None:
                fields.append(f"{m}_{fn}={float(value)!r}")
    if readings == 0 and len(fields) == 1:
        return None
    fields.append(f"interval_s={int(interval)}i")
    end_ms = int((bucket_start(int(row["time"])) + width).timestamp() * 1000)
    hour = facts.get((node, end_ms))
    if hour is not None:
        fields += hour.fields()
    return f"{measurement},node={_tag(node)},site={_tag(site)} {','.join(fields)} {end_ms}"


def rollup_rows(
    client: Client,
    site: str,
    nodes: list[str],
    start: datetime,
    end: datetime,
    period: Period,
    fields: list[str],
    trace: Trace | None = None,
    equals: tuple[str, str] | None = None,
) -> Iterator[Row]:
    """The stored roll-ups of buckets within (start, end], per node in time order: `node`, `start`
    (the bucket's start), `time` (epoch ms of its end) and `fields`; with `equals` (a string
    field, a value) only the buckets where the field has the value."""
    select = ", ".join(ident(f) for f in fields)
    cond = where(site, nodes, start, end)
    if equals is not None:
        cond += f" AND {ident(equals[0])} = {string(equals[1])}"
    text = f'SELECT {select} FROM {ident(MEASUREMENTS[period])} WHERE {cond} GROUP BY "node"'
    if trace is not None:
        trace(text)
    width = BUCKETS[period]
    for row in client.stream(text):
        yield {**row, "start": from_ms(int(row["time"])) - width}


def rollup_totals(
    client: Client,
    span_where: str,
    period: Period,
    selects: list[tuple[str, str]],
    per_node: bool,
    trace: Trace | None,
    every_: timedelta | None = None,
) -> Iterator[Row]:
    """`fn(column)` over the stored roll-ups of a span, per node or not: rows with `node` (per
    node), `time` (a selector's bucket end, epoch ms) and a key `fn_column` per select; with
    `every_`, per group of buckets too (`GROUP BY time(every_, 1ms)`: a bucket stamped at its end
    falls in the group (t, t + every_], labelled t + 1 ms), with the group's `start`."""
    parts = ", ".join(
        f"{'DISTINCT' if fn == 'distinct' else fn}({ident(c)}) AS {ident(f'{fn}_{c}')}" for fn, c in selects
    )
    text = f"SELECT {parts} FROM {ident(MEASUREMENTS[period])} WHERE {span_where}"
    groups = [f"time({every(every_)}, 1ms)"] if every_ is not None else []
    groups += ['"node"'] if per_node else []
    text += f" GROUP BY {', '.join(groups)}" if groups else ""
    text += " fill(none)" if every_ is not None else ""
    if trace is not None:
        trace(text)
    if every_ is None:
        return client.stream(text)
    return ({**r, "start": bucket_start(int(r["time"]))} for r in client.stream(text))
