"""ReportData to one self-contained, printable HTML file (jinja2 template, PNG plots inline as
base64), and optionally to PDF with WeasyPrint (no browser; Debian's Pango does the layout)."""

from __future__ import annotations

import base64
from datetime import datetime
from importlib import resources
from pathlib import Path

from contract import __version__
from contract.metrics import METRIC_UNITS, Metric
from gateway.report.model import COMPLETE, ReportData
from gateway.report.plots import EN, metric_png

FLAG_MEANINGS = {
    "warming_up": "a sensor had just been switched on or woken; values may read low",
    "sensor_fault": "a sensor gave no valid data (no bytes, bad frames, port gone); its value is missing",
    "out_of_range": "a value was outside what the sensor can measure; impossible values are left out",
    "high_humidity": "humidity was high enough to bias optical dust sensors upward",
    "clock_unsynced": "the node's clock was not synchronised; the reading's time may be wrong",
    "cal_expired": "the calibration applied had passed its validity date; the value may have drifted",
    "cal_fallback": "the calibration needed humidity or water temperature the node did not measure; "
    "the fallback its file documents was used",
}


def _label(metric: Metric | str) -> str:
    """How people write the metric; an unknown name (from an alert rule) is shown as stored."""
    return EN.short(str(metric))


def _time(ts: datetime | None) -> str:
    return "—" if ts is None else ts.strftime("%Y-%m-%d %H:%M UTC")


def _day(ts: datetime) -> str:
    return ts.strftime("%Y-%m-%d")


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _pct(fraction: float) -> str:
    return f"{100 * fraction:.1f} %"


def _unit(metric: Metric | str) -> str:
    return METRIC_UNITS[Metric(metric)]


def html(data: ReportData) -> str:
    import jinja2

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True)
    env.filters.update(label=_label, time=_time, day=_day, num=_num, pct=_pct, unit=_unit)
    template = env.from_string(resources.files("gateway.report").joinpath("template.html").read_text("utf-8"))
    plots = {
        (s.node, s.metric.value): base64.b64encode(metric_png(s, data.start, data.end)).decode("ascii")
        for s in data.metrics
    }
    return template.render(
        d=data,
        plots=plots,
        flag_meanings=FLAG_MEANINGS,
        complete=COMPLETE,
        version=__version__,
    )


def pdf(html_text: str, out: Path) -> None:
    """Print the same HTML to PDF with WeasyPrint (extra `report`; needs libpango on Debian)."""
    import logging

    from weasyprint import HTML

    for name in ("weasyprint", "fontTools"):  # they log every layout step at INFO
        logging.getLogger(name).setLevel(logging.WARNING)
    HTML(string=html_text).write_pdf(out)
