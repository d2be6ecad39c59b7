"""Readings (or their period means) from InfluxDB to CSV or JSON Lines, streamed.

The rows come from one streamed query (the reader protocol, gateway.stores) and are written as
they arrive, so a year of minute data from 50 nodes never sits in memory. The columns are fixed by
the metrics exported, described once in `columns()` and written beside the file as
`<out>.columns.json` (name, type, unit, meaning, and the query that produced the rows),
so the CSV itself stays plain for any CSV reader. A text cell a spreadsheet would run as a formula
is written with a leading `'` (contract.csvcell); `verify --input` reads it back as stored.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, TextIO

from contract import csvcell
from contract.figures import mean_decimals
from contract.metrics import METRIC_UNITS, Metric
from gateway import dataset, maintenance
from gateway.stores.reader import Reader, Span, Trace
from gateway.timerange import format_time, from_ms

Format = Literal["csv", "jsonl"]
PERIODS = {"1h": 3600, "24h": 86400}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: Literal["time", "string", "float", "integer", "boolean"]
    unit: str
    meaning: str


@dataclass(frozen=True, slots=True)
class ExportRequest:
    site: str
    nodes: list[str]  # empty: every node of the site
    start: datetime
    end: datetime
    metrics: list[Metric]
    average: Literal["1h", "24h"] | None = None
    interval_s: int | None = None  # overrides the inferred reading interval (completeness)


def reading_columns(metrics: list[Metric]) -> list[Column]:
    cols = [
        Column("time", "time", "UTC", "end of the reading's averaging window (RFC 3339, UTC)"),
        Column("site", "string", "", "site id"),
        Column("node", "string", "", "node id"),
        Column("seq", "integer", "", "the node's reading number; a gap means readings are missing"),
        Column("flags", "string", "", "quality flags joined with ',' (docs/protocol.md); empty: none"),
    ]
    for m in metrics:
        unit = METRIC_UNITS[m]
        cols += [
            Column(
                m.value, "float", unit, f"{m.value}, calibrated; empty when the sensor gave nothing valid"
            ),
            Column(
                f"{m.value}_raw", "float", "raw", f"{m.value} before calibration, in the sensor's raw unit"
            ),
            Column(f"{m.value}_n", "integer", "", f"samples averaged into {m.value}"),
            Column(
                f"{m.value}_cal", "string", "", f"id of the calibration applied to {m.value}; empty: none"
            ),
        ]
    cols += [
        Column(
            "period_s", "integer", "s", "length of the averaging window (empty: stored by an earlier version)"
        ),
        Column("signed", "boolean", "", "the gateway verified the node's Ed25519 signature at ingest"),
        Column("sig", "string", "", "the node's signature (base64), to re-verify"),
        Column("kid", "string", "", "id of the node key that signed"),
        Column(
            "received",
            "time",
            "UTC",
            "when the gateway accepted the reading, by its own clock (a revoked key's readings are "
            "judged by it); empty for readings stored before gateways recorded it",
        ),
        Column(
            "gateway_flags",
            "string",
            "",
            "flags the gateway found on storing it, not signed by the node: ts_shared = another "
            "reading (another seq) of the node has the same time, and both are kept; from a hub, "
            "hub_partial = only some metrics of the reading are shared, hub_hourly_mean = an hourly "
            "mean (neither carries a signature, docs/region.md); empty: none",
        ),
        Column(
            "maintenance",
            "string",
            "",
            "kinds of the maintenance visits whose marked window holds this reading, joined with ','; "
            "marked by the gateway, not signed by the node (docs/protocol.md); empty: none",
        ),
    ]
    return cols


def average_columns(metrics: list[Metric], period: str) -> list[Column]:
    cols = [
        Column(
            "start",
            "time",
            "UTC",
            f"start of the {period} period; it holds readings with start < time <= end",
        ),
        Column("end", "time", "UTC", f"end of the {period} period"),
        Column("site", "string", "", "site id"),
        Column("node", "string", "", "node id"),
        Column("interval_s", "integer", "s", "the node's reading interval (inferred from time and seq)"),
    ]
    for m in metrics:
        cols += [
            Column(
                f"{m.value}_mean",
                "float",
                METRIC_UNITS[m],
                f"mean of the calibrated {m.value} readings, to {mean_digits(m)} decimals; "
                "empty when the period holds none",
            ),
            Column(f"{m.value}_count", "integer", "", f"readings with a {m.value} value in the period"),
            Column(
                f"{m.value}_completeness",
                "float",
                "fraction",
                f"{m.value}_count / readings expected (period / interval_s), at most 1; "
                "regulatory means usually need 0.75",
            ),
        ]
    return cols


def columns(req: ExportRequest) -> list[Column]:
    return average_columns(req.metrics, req.average) if req.average else reading_columns(req.metrics)


def span(req: ExportRequest) -> Span:
    return Span(req.site, req.nodes, req.start, req.end)


def reading_fields(metrics: list[Metric]) -> list[str]:
    fields = ["site", "node", "seq", "flags"]
    for m in metrics:
        fields += [m.value, f"{m.value}_raw", f"{m.value}_n", f"{m.value}_cal"]
    return [*fields, "period_s", "signed", "sig", "kid", "received", "gateway_flags"]


def _typed(col: Column, value: Any) -> Any:
    if value is None or (value == "" and col.type != "string"):
        return None
    if col.type == "float":
        return float(value)  # InfluxDB's JSON writes 12.0 as 12
    if col.type == "integer":
        return int(value)
    if col.type == "time":
        return format_time(from_ms(int(value))) if isinstance(value, int) else value
    return value


def reading_rows(reader: Reader, req: ExportRequest, trace: Trace | None = None) -> Iterator[dict[str, Any]]:
    cols = reading_columns(req.metrics)
    visits = maintenance.marking(reader, req.site, req.start, req.end, req.nodes)
    for row in reader.readings(span(req), reading_fields(req.metrics), trace=trace):
        if not any(row.get(f"{m.value}_n") is not None for m in req.metrics):
            continue  # a reading of other metrics only (the request named --metrics)
        # the mark is applied as the rows are read: the stored readings stay as the node signed them
        marks = maintenance.marks_of(visits, str(row["node"]), from_ms(int(row["time"]))) if visits else []
        row["maintenance"] = ",".join(marks)
        yield {c.name: _typed(c, row.get(c.name)) for c in cols}


AVERAGE_CHUNK = 1000
"""Periods asked of the database at once for `--average`: rows are sorted into time order and the
periods without data filled in per chunk, so memory is bounded by 1000 periods × the nodes."""


def mean_digits(metric: Metric) -> int:
    """The report's digits for the same mean (contract/figures.py), so the two never disagree; no
    float noise (17.935625000000027)."""
    return mean_decimals(metric.value)


def _floor(at: datetime, period_s: int) -> datetime:
    seconds = int((at - _EPOCH).total_seconds())
    return _EPOCH + timedelta(seconds=seconds - seconds % period_s)


def nodes_in(reader: Reader, req: ExportRequest) -> list[str]:
    """The nodes to list: those named, else every node with a reading in the range."""
    if req.nodes:
        return sorted(req.nodes)
    rows = reader.aggregate(span(req), "seq", ["count"], per_node=True)
    return sorted({str(r["node"]) for r in rows if r.get("count")})


def average_rows(reader: Reader, req: ExportRequest, trace: Trace | None = None) -> Iterator[dict[str, Any]]:
    """Every period of the range for every node, in time order (then node), a period without a
    reading included with count 0 and completeness 0: a missing day is evidence too."""
    assert req.average is not None
    period_s = PERIODS[req.average]
    cols = average_columns(req.metrics, req.average)
    metrics = [m.value for m in req.metrics]
    bucket = timedelta(seconds=period_s)
    nodes = nodes_in(reader, req)
    intervals = {
        n: req.interval_s or dataset.interval_s(reader, req.site, n, req.start, req.end) for n in nodes
    }
    first = _floor(req.start, period_s)  # the period holding readings just after start
    last = _floor(req.end - timedelta(milliseconds=1), period_s)  # the period holding `end`
    chunk_start = first
    while chunk_start <= last:
        chunk_end = min(chunk_start + AVERAGE_CHUNK * bucket, last + bucket)
        sub = Span(req.site, nodes, max(req.start, chunk_start), min(req.end, chunk_end))
        found = {
            (str(r["node"]), r["start"]): r for r in reader.period_means(sub, metrics, bucket, trace=trace)
        }
        start = chunk_start
        while start < chunk_end:
            for node in nodes:
                yield {
                    c.name: v
                    for c, v in zip(cols, _mean_row(req, node, start, bucket, found, intervals), strict=True)
                }
            start += bucket
        chunk_start = chunk_end


def _mean_row(
    req: ExportRequest,
    node: str,
    start: datetime,
    bucket: timedelta,
    found: dict[tuple[str, datetime], Any],
    intervals: dict[str, int],
) -> list[Any]:
    row = found.get((node, start), {})
    out: list[Any] = [format_time(start), format_time(start + bucket), req.site, node, intervals[node]]
    expected = bucket.total_seconds() / intervals[node]
    for m in req.metrics:
        count = int(row.get(f"{m.value}_count") or 0)
        mean = row.get(f"{m.value}_mean")
        out.append(None if mean is None else round(float(mean), mean_digits(m)))
        out.append(count)
        out.append(round(min(1.0, count / expected), 4))
    return out


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back as the same double
    return str(value)


def write(
    reader: Reader,
    req: ExportRequest,
    out: TextIO,
    fmt: Format,
    progress: Callable[[str], None] | None = None,
    trace: Trace | None = None,
) -> int:
    """Write every row to `out`; `progress` gets each row's time (raw export), `trace` the query's
    text (for the sidecar). Returns the row count."""
    cols = columns(req)
    writer = csvcell.Writer(out)  # a text cell is never a formula (CSV injection)
    if fmt == "csv":
        writer.writerow([c.name for c in cols])
        if not req.average:
            return _csv_readings(reader, req, out, progress, trace)
    rows = average_rows(reader, req, trace) if req.average else reading_rows(reader, req, trace)
    count = 0
    for row in rows:
        if fmt == "csv":
            writer.writerow([_csv_cell(row[c.name]) for c in cols])
        else:
            out.write(json.dumps(row, ensure_ascii=False, allow_nan=False) + "\n")
        count += 1
        if progress is not None:
            progress(str(row.get("time") or row.get("start")))
    return count


def _csv_readings(
    reader: Reader,
    req: ExportRequest,
    out: TextIO,
    progress: Callable[[str], None] | None,
    trace: Trace | None,
) -> int:
    """The raw CSV export at the database's speed: its own CSV cells pass through, in the columns'
    order, and only what must change is touched: the times (epoch ms to RFC 3339; the reading's
    once per distinct time, which the nodes' readings share), text cells a spreadsheet would run
    (contract.csvcell), the maintenance marks when a visit marks the period, and readings of other
    metrics only, which are left out. Numbers keep the database's text."""
    fields = reading_fields(req.metrics)
    kinds = {c.name: c.type for c in reading_columns(req.metrics)}
    assert [c.name for c in reading_columns(req.metrics)] == ["time", *fields, "maintenance"]
    counted = [1 + fields.index(f"{m.value}_n") for m in req.metrics]  # cell 0 is the time
    texts = [1 + i for i, f in enumerate(fields) if kinds[f] == "string"] + [1 + len(fields)]
    times = [1 + i for i, f in enumerate(fields) if kinds[f] == "time"]  # `received`
    node_at = 1 + fields.index("node")
    visits = maintenance.marking(reader, req.site, req.start, req.end, req.nodes)
    writer = csvcell.Writer(out)
    last_ms, last_time, at = "", "", from_ms(0)
    count = 0
    for cells in reader.reading_cells(span(req), fields, trace=trace):
        if not any(cells[i] for i in counted):
            continue  # a reading of other metrics only (the request named --metrics)
        if cells[0] != last_ms:
            at = from_ms(int(cells[0]))
            last_ms, last_time = cells[0], format_time(at)
            if progress is not None:
                progress(last_time)
        cells[0] = last_time
        for i in times:
            if cells[i]:
                cells[i] = format_time(from_ms(int(cells[i])))
        # the mark is applied as the rows are read: the stored readings stay as the node signed them
        cells.append(",".join(maintenance.marks_of(visits, cells[node_at], at)) if visits else "")
        writer.write_cells(cells, texts)
        count += 1
    return count


def sidecar(req: ExportRequest, fmt: Format, rows: int, generated: datetime, query: str) -> dict[str, Any]:
    """What `<out>.columns.json` holds: enough for someone without our tools to read the file."""
    return {
        "format": fmt,
        "site": req.site,
        "nodes": req.nodes or "all",
        "start": format_time(req.start),
        "end": format_time(req.end),
        "range_rule": "readings with start < time <= end (time is the end of each averaging window)",
        "average": req.average,
        "rows": rows,
        "generated": format_time(generated),
        "influxql": query,
        "columns": [
            {"name": c.name, "type": c.type, "unit": c.unit, "meaning": c.meaning} for c in columns(req)
        ],
        "empty_cell": "absent in the database (CSV); null in JSON Lines",
    }
