"""`export --format aqdx|aqcsv|openaq`: our reading rows through a registered format to a CSV file.

The rows are the raw export's (gateway.export.reading_rows, one streamed query), so what these
files hold is exactly what `--format csv` holds, re-coded: nothing is recomputed. A reading's
`duration` is its stored `period_s`, else the node's interval inferred from time and seq
(gateway.dataset.interval_s). The sidecar `<out>.columns.json` names the format, the published
columns and the query, like the raw export's."""

from __future__ import annotations

import dataclasses
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from contract import csvcell
from contract.i18n import Texts
from contract.metrics import Metric
from gateway import dataset, export
from gateway.config import GatewayConfig
from gateway.exports.registry import FORMATS, Context, ExportFormat, NodePlace
from gateway.stores.reader import Reader, Trace
from gateway.timerange import QueryArgumentError, format_time


def context(cfg: GatewayConfig, config: Path, site: str, start: datetime) -> Context:
    places: dict[tuple[str, str], NodePlace] = {}
    for info in cfg.report.nodes:
        places[(info.site, info.node)] = NodePlace(info.lat, info.lon)
    for agency in cfg.exports.nodes:
        known = places.get((agency.site, agency.node), NodePlace())
        places[(agency.site, agency.node)] = dataclasses.replace(known, agency=agency)
    steward = cfg.exports.data_steward_name or ""
    return Context(
        config=config,
        exports=cfg.exports,
        places=places,
        consented=frozenset((m.service, m.site, m.node) for m in cfg.community_maps),
        attribution=cfg.report.operator or (cfg.web.attribution if cfg.web else "minewatch"),
        dataset_id=f"{steward}_{site}_{start:%Y%m%d}",
    )


def metrics_for(fmt: ExportFormat, asked: list[Metric], stored: list[Metric]) -> list[Metric]:
    """The metrics asked for (all the format has codes for, when none were), each one it can carry."""
    if asked:
        unknown = [m.value for m in asked if m not in fmt.metrics]
        if unknown:
            known = ", ".join(m.value for m in fmt.metrics)
            raise QueryArgumentError(
                Texts()("exchange_cli.no_code", format=fmt.title, metrics=", ".join(unknown), known=known)
            )
        return asked
    return [m for m in fmt.metrics if m in stored]


def write(
    fmt: ExportFormat,
    reader: Reader,
    req: export.ExportRequest,
    out: TextIO,
    ctx: Context,
    trace: Trace | None = None,
) -> int:
    """Write the header and every row to `out`; returns the number of rows (not readings)."""
    writer = csvcell.Writer(out)  # a text cell is never a formula (CSV injection)
    writer.writerow(fmt.columns)
    intervals: dict[str, int] = {}
    count = 0
    for row in export.reading_rows(reader, req, trace):
        node = row["node"]
        duration = row["period_s"]
        if duration is None:
            if node not in intervals:
                intervals[node] = dataset.interval_s(reader, req.site, node, req.start, req.end)
            duration = intervals[node]
        for metric in req.metrics:
            if row[f"{metric.value}_n"] is None:
                continue  # this reading did not carry the metric
            for cells in fmt.rows(row, metric, int(duration), ctx):
                writer.writerow(cells)
                count += 1
    return count


def run(
    name: str,
    cfg: GatewayConfig,
    config: Path,
    reader: Reader,
    req: export.ExportRequest,
    out: Path | None,
    field: dict[str, Any] | None = None,
) -> int:
    """The command's part for a registered format; every check before the first row is read.
    `field`: the field records the side file lists, as the raw export's does."""
    try:
        return _run(FORMATS[name], cfg, config, reader, req, out, field or {})
    finally:
        reader.close()


def _run(
    fmt: ExportFormat,
    cfg: GatewayConfig,
    config: Path,
    reader: Reader,
    req: export.ExportRequest,
    out: Path | None,
    field: dict[str, Any],
) -> int:
    name = fmt.name
    ctx = context(cfg, config, req.site, req.start)
    if req.average is not None:
        raise QueryArgumentError(ctx.texts("exchange_cli.no_average", name=name))
    fmt.check(ctx, req.site, req.nodes)
    req = dataclasses.replace(req, metrics=metrics_for(fmt, req.metrics, dataset.metrics_stored(reader)))
    if not req.metrics:
        known = ", ".join(m.value for m in fmt.metrics)
        raise QueryArgumentError(ctx.texts("exchange_cli.no_stored_metric", format=fmt.title, known=known))
    queries: list[str] = []
    if out is None:
        write(fmt, reader, req, sys.stdout, ctx, queries.append)
        return 0
    with out.open("w", encoding="utf-8", newline="") as fh:
        rows = write(fmt, reader, req, fh, ctx, queries.append)
    side = out.with_name(out.name + ".columns.json")
    side.write_text(
        json.dumps({**sidecar(fmt, req, rows, queries[0]), **field}, indent=2, ensure_ascii=False) + "\n",
        "utf-8",
    )
    print(ctx.texts("exchange_cli.written", n=rows, format=fmt.title, out=out, side=side), file=sys.stderr)
    return 0


def sidecar(fmt: ExportFormat, req: export.ExportRequest, rows: int, query: str) -> dict[str, Any]:
    return {
        "format": fmt.name,
        "title": fmt.title,
        "site": req.site,
        "nodes": req.nodes or "all",
        "start": format_time(req.start),
        "end": format_time(req.end),
        "metrics": [m.value for m in req.metrics],
        "rows": rows,
        "generated": format_time(datetime.now(UTC)),
        "influxql": query,
        "columns": list(fmt.columns),
        "codes": "docs/regulators.md, 'Exchange formats'",
    }
