"""Hourly and daily roll-ups of `reading` into `reading_1h` and `reading_1d`, recomputed from raw.

InfluxDB 1.x continuous queries would keep these too, but a CQ computes each interval once, when
it closes: a node's backlog arriving after an outage never reaches the hour it belongs to. So the
gateway recomputes a bucket from the raw readings, with one `GROUP BY time(1h, 1ms)` query, each
time readings land in it (gateway/rollup.py decides when), and writes one point per node and
bucket: same tags, same time, so a recomputed bucket overwrites the point before it. The roll-ups
are derived; `reading` stays the record.

A bucket is (b, b + d] like every period here, and its point is stamped at its END, b + d, as a
reading is stamped at the end of its window: `start < time <= end` on `reading_1h` is the hours
that lie in (start, end].
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from contract.metrics import Metric
from gateway.stores.base import Store
from gateway.stores.influxql import bucket_start, every, ident, where
from gateway.stores.reader import Row, Trace
from gateway.stores.rollups import BUCKETS, MEASUREMENTS, Period, Recompute
from gateway.timerange import from_ms

if TYPE_CHECKING:  # influx_report's reader serves the roll-ups with rollup_rows below
    from gateway.stores.influx_report import Client

AGGREGATES = ("mean", "min", "max", "count")
METRICS: tuple[str, ...] = tuple(m.value for m in Metric)
CHUNK: dict[Period, timedelta] = {"1h": timedelta(days=7), "1d": timedelta(days=92)}
"""How much raw history one recompute query covers, so a rebuild of a year stays small in memory."""


def _tag(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


class InfluxRollups:
    """Recompute roll-ups with InfluxQL over `client`, write them through `store`."""

    def __init__(self, client: Client, store: Store) -> None:
        self._db = client
        self._store = store

    def metric_fields(self) -> list[str]:
        keys = {str(r["fieldKey"]) for r in self._db.query('SHOW FIELD KEYS FROM "reading"')}
        return [m for m in METRICS if m in keys]

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
            if trace is not None:
                trace(text)
            for row in self._db.stream(text):
                line = _point(row, job.site, measurement, width, metrics, intervals)
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
    row: Row, site: str, measurement: str, width: timedelta, metrics: list[str], intervals: dict[str, int]
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
) -> Iterator[Row]:
    """The stored roll-ups of buckets within (start, end], per node in time order: `node`, `start`
    (the bucket's start), `time` (epoch ms of its end) and `fields`."""
    select = ", ".join(ident(f) for f in fields)
    text = (
        f"SELECT {select} FROM {ident(MEASUREMENTS[period])} WHERE {where(site, nodes, start, end)} "
        'GROUP BY "node"'
    )
    if trace is not None:
        trace(text)
    width = BUCKETS[period]
    for row in client.stream(text):
        yield {**row, "start": from_ms(int(row["time"])) - width}
