"""Time-series plots for the report, as PNG bytes (matplotlib, Agg backend, no pyplot state).

matplotlib is imported here only, so the node and the gateway's ingest never need it (extra
`report`). One figure per node and metric: hourly means, daily means as steps, each standard's
24-hour limit as a line, days whose complete mean is over the lowest limit shaded red, and the
exceedance periods from the `alert` measurement shaded orange.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta

from contract.i18n import Texts
from contract.metrics import METRIC_UNITS
from gateway.report.model import DAY, MetricSection

_LIMIT_STYLES = ("--", "-.", ":")
EN = Texts("en")
"""The report is in English for now; its metric names are the table's short labels (contract/i18n)."""


def metric_png(section: MetricSection, start: datetime, end: datetime) -> bytes:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num
    from matplotlib.figure import Figure

    def x(ts: datetime) -> float:  # matplotlib's stubs want numbers, not datetimes
        return float(date2num(ts))

    fig = Figure(figsize=(9.0, 3.8), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    if section.hourly:
        ax.plot(
            [x(t) for t, _ in section.hourly],
            [v for _, v in section.hourly],
            color="#4a6fa5",
            linewidth=0.8,
            label="1-hour mean",
        )
    days = [d for d in section.daily if d.mean is not None]
    if days:
        xs = [x(d.start) for d in days] + [x(days[-1].start + DAY)]
        ys = [d.mean or 0.0 for d in days] + [days[-1].mean or 0.0]
        ax.step(xs, ys, where="post", color="black", linewidth=1.6, label="24-hour mean")
    for i, (standard, limit) in enumerate(section.limits):
        ax.axhline(
            limit.value,
            color="#b22222",
            linestyle=_LIMIT_STYLES[i % len(_LIMIT_STYLES)],
            linewidth=1.1,
            label=f"{standard.title}: {limit.value:g} {METRIC_UNITS[limit.metric]} (24 h)",
        )
    if section.limits:
        lowest_std, lowest = min(section.limits, key=lambda sl: sl[1].value)
        for i, day in enumerate(section.days_over(lowest)):
            ax.axvspan(
                x(day.start),
                x(day.start + DAY),
                color="#ff0000",
                alpha=0.12,
                linewidth=0,
                label=f"day over the {lowest_std.title} limit" if i == 0 else None,
            )
    for i, ep in enumerate(section.episodes):
        ax.axvspan(
            x(ep.start or start),
            x(ep.end or end),
            color="#ff8c00",
            alpha=0.3,
            linewidth=0,
            label="alert (exceedance period)" if i == 0 else None,
        )
    ax.set_xlim(x(start), x(max(end, start + timedelta(hours=1))))
    ax.set_ylim(bottom=0)
    name = EN.short(section.metric.value)
    ax.set_ylabel(f"{name} ({METRIC_UNITS[section.metric]})")
    ax.set_title(f"{name} at {section.node}", loc="left", fontsize=10)
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    if handles:  # below the axes, so it never hides the data
        fig.legend(handles, labels, loc="outside lower center", ncols=3, fontsize=7, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
