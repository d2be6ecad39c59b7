"""ReportData to one self-contained, printable HTML file (jinja2 template, PNG plots inline as
base64), and optionally to PDF with WeasyPrint (no browser; Debian's Pango does the layout)."""

from __future__ import annotations

import base64
from datetime import datetime
from importlib import resources
from pathlib import Path

from contract import __version__
from contract.figures import Comparison, decimals_of, figure, limit_text, mean_decimals
from contract.i18n import Texts
from contract.metrics import METRIC_UNITS, Metric
from gateway.report.model import COMPLETE, ReportData
from gateway.report.plots import EN, metric_png
from gateway.standards import Limit, Standard


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


def html(data: ReportData, texts: Texts = EN) -> str:
    """The report in `texts`' language, its times in `texts`' zone and its nodes by their names."""
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True)
    t = texts
    env.filters.update(
        label=lambda metric: _label(t, metric),
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
    )
    template = env.from_string(resources.files("gateway.report").joinpath("template.html").read_text("utf-8"))
    plots = {
        (s.node, s.metric.value): base64.b64encode(metric_png(s, data.start, data.end, t, data.site)).decode(
            "ascii"
        )
        for s in data.metrics
    }
    return template.render(
        d=data,
        plots=plots,
        complete=COMPLETE,
        version=__version__,
        t=t,
    )


def pdf(html_text: str, out: Path) -> None:
    """Print the same HTML to PDF with WeasyPrint (extra `report`; needs libpango on Debian)."""
    import logging

    from weasyprint import HTML

    for name in ("weasyprint", "fontTools"):  # they log every layout step at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    HTML(string=html_text).write_pdf(out)
