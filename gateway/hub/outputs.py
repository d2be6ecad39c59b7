"""Export, report and evidence bundle of one site on the hub, as one jurisdiction's reader sees it.

The same code a site gateway runs (gateway/export.py, gateway/report/, gateway/evidence.py) over
the hub's reader (gateway/stores/postgres_reader.py); only the keys differ: they are the records
the site vouched for, as the hub holds them (`node_key`), so a bundle from the hub is checked by
`verify --bundle` exactly as one from the site. Used by `hub serve` (/api/v1/export.csv, ...) and
by `hub export|report|evidence --as JURISDICTION`.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from contract.metrics import Metric
from gateway import export
from gateway.standards import STANDARDS
from gateway.stores.postgres_reader import PostgresReader
from gateway.timerange import QueryArgumentError
from gateway.trust.registry import KeyRecord


def remove(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)


def request(
    site: str | None,
    nodes: list[str],
    start: str | None,
    end: str | None,
    metrics: str | None = None,
    average: str | None = None,
) -> export.ExportRequest:
    """The arguments as `export`'s own, checked by the same code (the error names what is wrong)."""
    from gateway.commands.export import request as export_request

    for name, value in (("site", site), ("start", start), ("end", end)):
        if not value:
            raise QueryArgumentError(f"{name}: required")
    if average is not None and average not in export.PERIODS:
        raise QueryArgumentError(f"average: one of {', '.join(sorted(export.PERIODS))}")
    args = argparse.Namespace(
        site=site, node=list(nodes), start=start, end=end, metrics=metrics, average=average, interval_s=None
    )
    return export_request(args)


def check_known(reader: PostgresReader, req: export.ExportRequest) -> None:
    """A site the role may not see is as unknown as one that does not exist (nothing is said of it)."""
    from gateway.commands.export import check_known as known

    known(reader, req)


def _with_metrics(reader: PostgresReader, req: export.ExportRequest) -> export.ExportRequest:
    """Every stored metric when none is named: a signature covers them all, so each row verifies."""
    if req.metrics:
        return req
    stored = [Metric(m) for m in reader.stored_metrics()]
    return dataclasses.replace(req, metrics=stored or [Metric.PM2_5])


def _keys(reader: PostgresReader, req: export.ExportRequest) -> list[KeyRecord]:
    records = [KeyRecord.model_validate(x) for x in reader.key_records(req.site)]
    return sorted(
        (r for r in records if not req.nodes or r.node in req.nodes), key=lambda r: (r.node, r.created)
    )


def export_file(reader: PostgresReader, req: export.ExportRequest, out: Path, fmt: str = "csv") -> int:
    if fmt not in ("csv", "jsonl"):
        raise QueryArgumentError("format: csv or jsonl")
    with out.open("w", encoding="utf-8", newline="") as fh:
        return export.write(reader, _with_metrics(reader, req), fh, "csv" if fmt == "csv" else "jsonl")


def report_file(
    reader: PostgresReader,
    req: export.ExportRequest,
    out: Path,
    now: datetime,
    pdf: Path | None = None,
    *,
    pdf_optional: bool = False,
) -> None:
    """The report at `out` (and its PDF at `pdf`); `pdf_optional`: a PDF WeasyPrint cannot make
    (no `report` extra, no Pango) is left out rather than failing the bundle it goes into."""
    from gateway.report import data, render
    from gateway.report.model import About, KeyInfo

    keys = tuple(
        KeyInfo(r.kid, r.site, r.node, str(r.status), r.created, r.since) for r in _keys(reader, req)
    )
    report = data.collect(
        reader, site=req.site, start=req.start, end=req.end, generated=now, standards=list(STANDARDS),
        metrics=req.metrics or None, nodes=req.nodes, about=About(gateway_id="hub", keys=keys),
    )  # fmt: skip
    drawn = render.plots(report)  # drawn once for the HTML and the PDF
    render.write_html(out, report, drawn=drawn)
    if pdf is not None:
        try:
            render.pdf(report, pdf, drawn)
        except (ImportError, OSError):
            if not pdf_optional:
                raise


def evidence_file(reader: PostgresReader, req: export.ExportRequest, out: Path, now: datetime) -> int:
    """The bundle at `out`; its report's PDF only when WeasyPrint (the `report` extra) is there."""
    from gateway import evidence

    req = _with_metrics(reader, req)

    def report(html: Path, pdf: Path) -> None:
        report_file(reader, req, html, now, pdf, pdf_optional=True)

    bundle = evidence.BundleRequest(
        export=req, out=out, keys=_keys(reader, req), calibrations_dir=None, generated=now
    )
    with tempfile.TemporaryDirectory(prefix="minewatch-evidence-") as work:
        return evidence.write(reader, bundle, Path(work), report, None).rows
