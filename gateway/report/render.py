"""ReportData to one self-contained, printable HTML file (jinja2 template, PNG plots inline as
base64), and optionally to PDF with WeasyPrint (no browser; Debian's Pango does the layout)."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from datetime import datetime
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from contract import __version__, csvcell
from contract.figures import Comparison, decimals_of, figure, limit_text, mean_decimals
from contract.i18n import Texts
from contract.metrics import METRIC_UNITS, Metric
from gateway.alerts.messages import rule_name
from gateway.report import drawing, printing
from gateway.report.model import COMPLETE, ReportData
from gateway.report.plots import EN, layout
from gateway.standards import Limit, Standard

if TYPE_CHECKING:
    import jinja2


def _label(t: Texts, metric: Metric | str) -> str:
    """How people write the metric; an unknown name (from an alert rule) is shown as stored."""
    return t.short(str(metric))


def _day(ts: datetime) -> str:
    """A day of the daily tables: the report's days are UTC days, as the database's roll-ups are
    (the "how to read" section says when they begin in local time)."""
    return ts.strftime("%Y-%m-%d")


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _pct(fraction: float, digits: int = 1) -> str:
    return f"{100 * fraction:.{digits}f} %"


def _fig(
    value: float | None, metric: str, limit: float | None = None, comparison: Comparison = "above"
) -> str:
    """A reading, a peak: the metric's decimals, as the alert messages write them, and more where
    fewer would hide which side of the limit it is on."""
    return "—" if value is None else figure(value, decimals_of(metric), limit, comparison)


LONG_TABLE = 62
"""Days beyond which a node's or a metric's table of days is cut into one table a month."""

MEAN = mean_decimals("pm2_5")
"""A mean's digits: every metric with a limit has one decimal, so its means have two, as
`export --average` writes them (contract/figures.py)."""


def _fig2(value: float | None, limit: float, comparison: Comparison = "above") -> str:
    """A mean compared with a limit: a mean's digits, or more when those would hide the verdict."""
    return "—" if value is None else figure(value, MEAN, limit, comparison)


def _mean(value: float | None, limits: list[tuple[Standard, Limit]]) -> str:
    """A daily mean beside several limits: the digits that the closest of them needs."""
    if value is None:
        return "—"
    digits = mean_decimals(str(limits[0][1].metric)) if limits else MEAN
    shown = [figure(value, digits, lim.value, s.comparison) for s, lim in limits] or [f"{value:.{digits}f}"]
    return max(shown, key=len)


def _limit(value: float, metric: str) -> str:
    return limit_text(value, decimals_of(metric))


def _unit(metric: Metric | str) -> str:
    return METRIC_UNITS[Metric(metric)]


def _title(t: Texts, standard: Standard) -> str:
    """A standard's name in the reader's language (`standard.<key>.title`), else as it is written."""
    key = f"standard.{standard.key}.title"
    return t(key) if t.has(key) else standard.title


def _source(t: Texts, standard: Standard) -> str:
    key = f"standard.{standard.key}.source"
    return t(key) if t.has(key) else standard.source


def _average(t: Texts, average: str) -> str:
    """A rule's averaging as the reader writes it: "instant", "NowCast", "24 h", "15 min"."""
    if t.has(f"report.average.{average}"):
        return t(f"report.average.{average}")
    unit, n = average[-1:], average[:-1]
    key = f"report.average.{unit}"
    return t(key, n=n) if n.isdigit() and t.has(key) else average


ATTACHMENTS = {"completeness": "completeness-by-day.csv", "daily": "daily-means-by-day.csv"}
"""The files a printed report of a long period carries its days in (render.pdf)."""


Drawn = Mapping[tuple[str, str], bytes]
"""Each metric section's plot, PNG bytes by (node, metric)."""


def plots(data: ReportData, texts: Texts = EN, *, apart: bool = False) -> Drawn:
    """Each metric section's plot as PNG, in `texts`' language and zone: drawn once for the HTML
    and the PDF both. `apart`: drawn in a child process (drawing.Apart) while this one goes on to
    write the HTML (a plot looked up waits for it), and gone before the PDF is laid out, so
    matplotlib's memory is not added to WeasyPrint's."""
    keys = [(s.node, s.metric.value) for s in data.metrics]
    layouts = (layout(s, data.start, data.end, texts, data.site) for s in data.metrics)
    if apart:
        return drawing.Apart(keys, layouts)
    return {k: drawing.png(p) for k, p in zip(keys, layouts, strict=True)}


def html(
    data: ReportData,
    texts: Texts = EN,
    *,
    printed: bool = False,
    drawn: Drawn | None = None,
    pages: printing.Pages | None = None,
    front_only: bool = False,
) -> str:
    """The report in `texts`' language, its times in `texts`' zone and its nodes by their names.
    `printed`: the page WeasyPrint lays out for the PDF, where a period longer than LONG_TABLE days
    shows its days a month per row, and the days themselves travel as CSV files attached to the
    PDF (a year of fifty nodes is 55,000 table rows: hours of layout); `pages` numbers its
    contents list (printed: the PDF's parts are numbered by render.pdf, not by WeasyPrint), and
    `front_only` stops after it. The printed page's plots are `printing.PLOT` URLs, fetched from
    memory while the PDF is laid out (3 MB of base64 is slow for WeasyPrint's HTML parser)."""
    return _template(texts).render(_context(data, texts, printed, drawn, pages, front_only))


def write_html(out: Path, data: ReportData, texts: Texts = EN, *, drawn: Drawn | None = None) -> int:
    """`html(data, texts, drawn=drawn)` written to `out` piece by piece as it is rendered, never
    whole in memory (a year of fifty nodes is 16 MB of text, and the pieces it is joined from
    several times that, which a PDF laid out next would find still held). Returns its length;
    plots drawn apart (`plots(apart=True)`), once their child has exited."""
    written = 0
    with out.open("w", encoding="utf-8") as f:
        for piece in _template(texts).generate(_context(data, texts, False, drawn, None, False)):
            f.write(piece)
            written += len(piece)
    if isinstance(drawn, drawing.Apart):
        drawn.wait()
    return written


def _context(
    data: ReportData,
    texts: Texts,
    printed: bool,
    drawn: Drawn | None,
    pages: printing.Pages | None,
    front_only: bool,
) -> dict[str, object]:
    return {
        "d": data,
        "plots": {} if printed else plots(data, texts) if drawn is None else drawn,
        "plot_url": printing.PLOT,
        "front_only": front_only,
        "complete": COMPLETE,
        "long_table": LONG_TABLE,
        "printed": printed,
        "pages": pages,
        "attachments": ATTACHMENTS,
        "version": __version__,
        "t": texts,
    }


@cache
def _template(t: Texts) -> jinja2.Template:
    """The template with `t`'s filters, compiled once a language and zone (it takes a second)."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True)
    env.filters.update(
        label=lambda metric: _label(t, metric),
        rule=lambda episode: rule_name(episode.named or {"rule": episode.rule}, t),
        time=t.time,
        title=lambda standard: _title(t, standard),
        source=lambda standard: _source(t, standard),
        average=lambda average: _average(t, average),
        day=_day,
        num=_num,
        pct=_pct,
        unit=_unit,
        fig=_fig,
        fig2=_fig2,
        mean=_mean,
        limit=_limit,
        b64=lambda png: base64.b64encode(png).decode("ascii"),
    )
    return env.from_string(resources.files("gateway.report").joinpath("template.html").read_text("utf-8"))


def pdf(
    data: ReportData,
    out: Path,
    drawn: Drawn | None = None,
    texts: Texts = EN,
) -> None:
    """Print the report to PDF with WeasyPrint (extra `report`; needs libpango on Debian): the
    printed HTML (html(printed=True)) laid out in parts and joined (gateway/report/printing.py),
    with each day's completeness and means attached as CSV."""
    drawn = plots(data, texts) if drawn is None else drawn

    def images() -> dict[str, bytes]:
        if isinstance(drawn, drawing.Apart):
            drawn.wait()  # the drawing child gone before WeasyPrint's memory grows
        return {f"{printing.PLOT}{i}": drawn[(m.node, m.metric.value)] for i, m in enumerate(data.metrics)}

    attachments = {ATTACHMENTS["completeness"]: _days_csv(data), ATTACHMENTS["daily"]: _means_csv(data)}
    printing.write(
        lambda pages, front_only: html(data, texts, printed=True, pages=pages, front_only=front_only),
        out,
        attachments,
        images,
    )


def _csv(header: list[str], rows: list[list[str]]) -> str:
    buf = io.StringIO()
    writer = csvcell.Writer(buf)  # the one writer: no cell is run as a spreadsheet formula
    writer.writerow(header)
    for row in rows:
        writer.writerow(row)
    return buf.getvalue()


def _days_csv(data: ReportData) -> str:
    """Each node's days as its completeness table shows them."""
    rows = [
        [n.node, _day(d.start), str(d.readings), str(d.expected), f"{d.completeness:.4f}"]
        for n in data.nodes
        for d in n.days
    ]
    return _csv(["node", "day", "readings", "expected", "completeness"], rows)


def _means_csv(data: ReportData) -> str:
    """Each metric's days as its daily table shows them (mean and highest reading as stored)."""
    rows = []
    for m in data.metrics:
        for d in m.daily:
            over = "; ".join(s.key for s in m.over_on(d))
            rows.append(
                [
                    m.node,
                    m.metric.value,
                    _day(d.start),
                    "" if d.mean is None else repr(d.mean),
                    str(d.count),
                    str(d.expected),
                    f"{d.completeness:.4f}",
                    "" if d.max is None else repr(d.max),
                    "true" if d.is_complete else "false",
                    over,
                ]
            )
    header = [
        "node",
        "metric",
        "day",
        "mean",
        "readings",
        "expected",
        "completeness",
        "max",
        "judged",
        "over",
    ]
    return _csv(header, rows)
