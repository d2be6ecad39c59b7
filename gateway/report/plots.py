"""Time-series plots for the report: what each shows (`layout`), drawn by gateway.report.drawing.

One plot per node and metric: hourly means, the judged days' means as level lines, each standard's
24-hour limit as a line, days whose complete mean is over the lowest limit shaded red, days with
too few readings to be judged hatched (and no mean drawn for them), and the exceedances from the
`alert` measurement (start to end) shaded orange.

`layout` says what is drawn (marks in data units, with their legend's words: what a test reads
back); drawing.figure draws them and drawing.png encodes the drawing. A year's hours are drawn
as the band each pixel's hours span, not as a line of 8,760 points.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from contract.i18n import Texts
from contract.metrics import METRIC_UNITS
from gateway.report.drawing import Marks, Plot
from gateway.report.model import DAY, MetricSection
from gateway.standards import Standard

DENSE = 900
"""Hourly means beyond which the plot draws the band each pixel's hours span rather than their line."""
EN = Texts("en")
"""The words of a report nobody asked in another language: English, times in UTC."""

_DASHES = ("--", "-.", ":")


def layout(section: MetricSection, start: datetime, end: datetime, t: Texts = EN, site: str = "") -> Plot:
    """What the plot shows, in `t`'s language, its time axis in `t`'s zone."""
    end = max(end, start + timedelta(hours=1))
    t0, t1 = start.timestamp(), end.timestamp()
    hours = section.hourly
    values = list(hours.values)
    judged = [d for d in section.daily if d.mean is not None and d.is_complete]
    marks: list[Marks] = []

    def spans(runs: list[tuple[datetime, datetime]]) -> list[tuple[float, float]]:
        return [(lo.timestamp(), hi.timestamp()) for lo, hi in runs]

    # what lies under the data first: shaded days, then the data, the means and the limits
    untold = _runs((max(d.start, start), min(d.start + DAY, end)) for d in section.daily if not d.is_complete)
    if untold:
        marks.append(Marks("insufficient", t("report.plot.insufficient"), spans=spans(untold)))
    if section.limits:
        lowest_std, lowest = min(section.limits, key=lambda sl: sl[1].value)
        over = _runs((d.start, d.start + DAY) for d in section.days_over(lowest, lowest_std.comparison))
        if over:
            label = t("report.plot.over", standard=_title(t, lowest_std))
            marks.append(Marks("over", label, spans=spans(over)))
    alerts = [(ep.start or start, ep.end or end) for ep in section.episodes if ep.is_exceedance]
    if alerts:
        marks.append(Marks("alert", t("report.plot.alert"), spans=spans(alerts)))
    # More hours than the plot has pixels: the band each pixel's hours span, which is what their
    # line looks like (a year is 8,760 hours for 900 pixels). The report asks the database for it
    # (levels.py); a section that holds every hour is folded here.
    if section.band is not None:
        mids, lows, highs = list(section.band.times_s), list(section.band.lows), list(section.band.highs)
    elif len(values) > DENSE:
        mids, lows, highs = _envelope(list(hours.times_s), values, len(values) // DENSE + 1)
    else:
        mids, lows, highs = [], [], []
    if highs:
        ring = [*zip(mids, highs, strict=True), *reversed(list(zip(mids, lows, strict=True)))]
        marks.append(Marks("band", t("report.plot.hourly"), points=ring))
        values = highs
    elif values:
        points = list(zip(hours.times_s, values, strict=True))
        marks.append(Marks("hourly", t("report.plot.hourly"), points=points))
    # Only a judged day's mean is drawn: a line from a day with too few readings would claim a
    # 24-hour mean there is none of. The other days with data are hatched as insufficient.
    if judged:
        levels = [(d.start.timestamp(), (d.start + DAY).timestamp(), d.mean or 0.0) for d in judged]
        marks.append(Marks("daily", t("report.plot.daily"), levels=levels))
    for i, (standard, limit) in enumerate(section.limits):
        words = t(
            "report.plot.limit",
            standard=_title(t, standard),
            value=f"{limit.value:g}",
            unit=METRIC_UNITS[limit.metric],
        )
        marks.append(Marks("limit", words, levels=[(t0, t1, limit.value)], dash=_DASHES[i % len(_DASHES)]))
    top = max([*values, *(d.mean or 0.0 for d in judged), *(lim.value for _, lim in section.limits), 1.0])
    name = t.short(section.metric.value)
    heading = t("report.metric.heading", metric=name, node=t.node_name(site, section.node))
    return Plot(
        title=f"{heading} ({t.zone_of(start)})",
        y_label=f"{name} ({METRIC_UNITS[section.metric]})",
        start_s=t0,
        end_s=t1,
        y_max=1.05 * top,
        zone=t.zone,
        marks=marks,
    )


def _title(t: Texts, standard: Standard) -> str:
    key = f"standard.{standard.key}.title"
    return t(key) if t.has(key) else standard.title


def _envelope(xs: list[float], values: list[float], per: int) -> tuple[list[float], list[float], list[float]]:
    """Runs of `per` consecutive hourly means as (middle time, lowest, highest)."""
    mids, lows, highs = [], [], []
    for i in range(0, len(values), per):
        run = values[i : i + per]
        mids.append(xs[i + len(run) // 2])
        lows.append(min(run))
        highs.append(max(run))
    return mids, lows, highs


def _runs(spans: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Consecutive days as one span: a year of days over a limit is one rectangle, not 365."""
    out: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
