"""Time-series plots for the report, as PNG bytes (matplotlib, Agg backend, no pyplot state).

matplotlib is imported here only, so the node and the gateway's ingest never need it (extra
`report`). One figure per node and metric: hourly means, the judged days' means as level lines,
each standard's 24-hour limit as a line, days whose complete mean is over the lowest limit shaded
red, days with too few readings to be judged hatched (and no mean drawn for them), and the
exceedances from the `alert` measurement (start to end) shaded orange.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from contract.i18n import Texts
from contract.metrics import METRIC_UNITS
from gateway.report.model import DAY, MetricSection
from gateway.standards import Standard

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_LIMIT_STYLES = ("--", "-.", ":")
DENSE = 1000
"""Hourly means beyond which the plot (990 px wide) draws their band rather than their line."""
EN = Texts("en")
"""The words of a report nobody asked in another language: English, times in UTC."""


def metric_png(
    section: MetricSection, start: datetime, end: datetime, t: Texts = EN, site: str = ""
) -> bytes:
    buf = io.BytesIO()
    metric_figure(section, start, end, t, site).savefig(buf, format="png")
    return buf.getvalue()


def metric_figure(
    section: MetricSection, start: datetime, end: datetime, t: Texts = EN, site: str = ""
) -> Figure:
    """The plot in `t`'s language, its time axis in `t`'s zone (matplotlib's default DejaVu Sans
    has Cyrillic)."""
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    def x(ts: datetime) -> float:  # matplotlib's stubs want numbers, not datetimes
        return float(date2num(ts))

    # fixed margins, not layout="constrained": its solver drew each figure twice, and a year of
    # fifty nodes is a hundred figures
    fig = Figure(figsize=(9.0, 3.8), dpi=110)
    fig.subplots_adjust(left=0.075, right=0.985, top=0.92, bottom=0.25)
    ax = fig.add_subplot()
    hours = section.hourly
    days = [t / 86400 for t in hours.times_s]  # matplotlib's dates: days since 1970-01-01
    if len(hours) > DENSE:
        # More hours than the plot has pixels: drawn as the band each pixel's hours span, which is
        # what the line looked like, at a tenth of the cost (a year's 8760-point line took 0.9 s)
        xs, lows, highs = _envelope(days, list(hours.values), len(hours) // DENSE + 1)
        ax.fill_between(xs, lows, highs, color="#4a6fa5", linewidth=0.8, label=t("report.plot.hourly"))
    elif len(hours):
        ax.plot(days, list(hours.values), color="#4a6fa5", linewidth=0.8, label=t("report.plot.hourly"))
    # Only a judged day's mean is drawn: a line from a day with too few readings would claim a
    # 24-hour mean there is none of. The other days with data are marked as insufficient.
    judged = [d for d in section.daily if d.mean is not None and d.is_complete]
    if judged:
        ax.hlines(
            [d.mean or 0.0 for d in judged],
            [x(d.start) for d in judged],
            [x(d.start + DAY) for d in judged],
            color="black",
            linewidth=1.6,
            label=t("report.plot.daily"),
        )
    untold = _runs((max(d.start, start), min(d.start + DAY, end)) for d in section.daily if not d.is_complete)
    for i, (lo, hi) in enumerate(untold):
        ax.axvspan(
            x(lo),
            x(hi),
            facecolor="none",
            edgecolor="#888888",
            hatch="//",
            linewidth=0,
            label=t("report.plot.insufficient") if i == 0 else None,
        )
    for i, (standard, limit) in enumerate(section.limits):
        ax.axhline(
            limit.value,
            color="#b22222",
            linestyle=_LIMIT_STYLES[i % len(_LIMIT_STYLES)],
            linewidth=1.1,
            label=t(
                "report.plot.limit",
                standard=_title(t, standard),
                value=f"{limit.value:g}",
                unit=METRIC_UNITS[limit.metric],
            ),
        )
    if section.limits:
        lowest_std, lowest = min(section.limits, key=lambda sl: sl[1].value)
        over = _runs((d.start, d.start + DAY) for d in section.days_over(lowest, lowest_std.comparison))
        for i, (lo, hi) in enumerate(over):
            ax.axvspan(
                x(lo),
                x(hi),
                color="#ff0000",
                alpha=0.12,
                linewidth=0,
                label=t("report.plot.over", standard=_title(t, lowest_std)) if i == 0 else None,
            )
    for i, ep in enumerate(e for e in section.episodes if e.is_exceedance):
        ax.axvspan(
            x(ep.start or start),
            x(ep.end or end),
            color="#ff8c00",
            alpha=0.3,
            linewidth=0,
            label=t("report.plot.alert") if i == 0 else None,
        )
    ax.set_xlim(x(start), x(max(end, start + timedelta(hours=1))))
    ax.set_ylim(bottom=0)
    name = t.short(section.metric.value)
    ax.set_ylabel(f"{name} ({METRIC_UNITS[section.metric]})")
    heading = t("report.metric.heading", metric=name, node=t.node_name(site, section.node))
    ax.set_title(f"{heading} ({t.zone_of(start)})", loc="left", fontsize=10)
    locator = AutoDateLocator(tz=t.zone)
    ax.xaxis.set_major_locator(locator)
    # numbers only: a month's abbreviation ("Nov") would be English on a Mongolian plot
    ax.xaxis.set_major_formatter(
        ConciseDateFormatter(
            locator,
            tz=t.zone,
            formats=["%Y", "%Y-%m", "%m-%d", "%H:%M", "%H:%M", "%S.%f"],
            zero_formats=["", "%Y", "%Y-%m", "%m-%d", "%H:%M", "%H:%M"],
            offset_formats=["", "%Y", "%Y-%m", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"],
        )
    )
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:  # below the axes, so it never hides the data
        # two columns: three of the longer (Mongolian) labels ran off the page
        fig.legend(handles, labels, loc="lower center", ncols=2, fontsize=7, frameon=False)
    return fig


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
    """Consecutive days as one span: a year of days over a limit is one patch to draw, not 365
    (each patch cost matplotlib about 2 ms)."""
    out: list[tuple[datetime, datetime]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out
