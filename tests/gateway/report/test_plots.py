"""The report's plots: what `plots.layout` marks, the matplotlib artists `drawing.figure` draws them
with (read back from the figure), and the time axis's ticks, in the site's zone, for a day, a
month and a year."""

from __future__ import annotations

import io
from array import array
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.dates import date2num, num2date
from matplotlib.patches import Polygon
from PIL import Image

from contract.i18n import Texts
from contract.metrics import Metric
from gateway.report import drawing, plots
from gateway.report.model import Band, DailyMean, HourlyMeans, MetricSection
from gateway.standards import STANDARDS

START = datetime(2026, 1, 1, tzinfo=UTC)


def _section(days: int) -> MetricSection:
    who = STANDARDS["who-2021"]
    limits = [(who, lim) for lim in who.limits if lim.metric is Metric.PM2_5 and lim.average == "24h"]
    daily = [
        DailyMean(START + timedelta(days=i), 10.0 + i % 4 * 3, 1440 if i % 7 else 100, 1440, 40.0)
        for i in range(days)
    ]
    hours = HourlyMeans.of((START + timedelta(hours=h + 1), 10.0 + h % 30) for h in range(24 * days))
    return MetricSection("haul-road", Metric.PM2_5, daily, limits, (40.0, START), hours, [])


@pytest.mark.parametrize(
    ("days", "zone", "first", "then"),
    [
        (1, "UTC", "01-01", "04:00"),  # hours, the date at midnight
        (1, "Asia/Ulaanbaatar", "08:00", "12:00"),  # the site's hours, not UTC's
        (31, "UTC", "2026-01", "01-08"),  # weeks: the month on its first day
        (
            365,
            "Asia/Ulaanbaatar",
            "2026-03",
            "2026-05",
        ),  # every other month (local 01-01 is before the start)
    ],
)
def test_the_time_axis_has_a_few_round_local_ticks(days: int, zone: str, first: str, then: str) -> None:
    t = Texts("en", zone)
    fig = drawing.figure(plots.layout(_section(days), START, START + timedelta(days=days), t))
    fig.canvas.draw()
    (ax,) = fig.axes
    assert ax.get_xlim() == (date2num(START), date2num(START + timedelta(days=days)))
    ticks = [s for s in ax.get_xticks() if ax.get_xlim()[0] <= s <= ax.get_xlim()[1]]
    assert 3 <= len(ticks) <= 8
    assert [label.get_text() for label in ax.get_xticklabels()[:2]] == [first, then]
    local = num2date(ticks[0], t.zone)
    assert local.minute == 0 and (days == 1 or local.hour == 0)


def test_a_year_is_drawn_as_a_band_and_every_judged_day_as_its_mean() -> None:
    section = _section(365)
    plot = plots.layout(section, START, START + timedelta(days=365))
    (band,) = plot.of("band")
    assert not plot.of("hourly") and len(band.points) <= 2 * plots.DENSE + 2
    # the band spans the hourly means' range: its outline reaches the lowest and the highest
    assert min(v for _, v in band.points) == 10.0 and max(v for _, v in band.points) == 39.0
    (daily,) = plot.of("daily")
    judged = [d for d in section.daily if d.is_complete]
    assert [lv[2] for lv in daily.levels] == [d.mean for d in judged] and len(judged) < 365
    (hatched,) = plot.of("insufficient")
    assert len(hatched.spans) == 365 - len(judged)  # the days of 100 readings, each its own span
    (limit,) = plot.of("limit")
    assert limit.levels == [(plot.start_s, plot.end_s, 15.0)] and plot.y_max >= 39.0
    # what the figure draws: an artist a kind, holding every mark of it
    fig = drawing.figure(plot)
    (ax,) = fig.axes
    drawn = [a for a in ax.get_children() if a.get_visible()]
    (polygon,) = (a for a in drawn if isinstance(a, Polygon))
    assert len(polygon.get_xy()) >= len(band.points)
    assert ax.get_ylim() == (0, plot.y_max)
    spans = {len(a.get_paths()) for a in drawn if isinstance(a, PolyCollection)}
    assert len(hatched.spans) in spans  # the hatched days, one rectangle each, in one collection
    levels = [a for a in drawn if isinstance(a, LineCollection)]
    assert sorted(len(a.get_segments()) for a in levels) == [1, len(judged)]
    (limit_line,) = (a for a in levels if len(a.get_segments()) == 1)
    assert [tuple(p[1] for p in limit_line.get_segments()[0])] == [(15.0, 15.0)]
    assert limit_line.get_linestyle() != [(None, None)]  # dashed
    with Image.open(io.BytesIO(drawing.png(plot))) as img:
        assert img.size == (drawing.WIDTH, drawing.HEIGHT) and img.mode == "RGB"
        # the hatched days' grey strokes reach the pixels, the first day's white is not all white
        assert (
            len(
                img.crop(
                    (drawing.LEFT + 2, drawing.TOP + 2, drawing.RIGHT - 2, drawing.BOTTOM - 2)
                ).getcolors(2**16)
                or []
            )
            > 10
        )


def test_a_band_from_the_database_is_drawn_as_it_came() -> None:
    """A long period's section holds the band (levels.py asks the database for it), not its hours:
    the plot draws its groups' lowest and highest means as they are, and scales to the highest."""
    section = _section(365)
    section.hourly = HourlyMeans()
    mids = [(START + timedelta(hours=10 * k + 5)).timestamp() for k in range(876)]
    section.band = Band(
        10, array("d", mids), array("d", [5.0] * 876), array("d", [50.0 + k % 3 for k in range(876)])
    )
    plot = plots.layout(section, START, START + timedelta(days=365))
    (band,) = plot.of("band")
    assert band.points[0] == (mids[0], 50.0) and band.points[-1] == (mids[0], 5.0)
    assert len(band.points) == 2 * 876 and plot.y_max == 1.05 * 52.0
    section.band = Band(10)  # a node with no hours: nothing drawn for them
    assert not plots.layout(section, START, START + timedelta(days=365)).of("band")


def test_a_plot_copies_the_words_under_its_axes_only_from_a_plot_that_showed_the_same() -> None:
    """`png` draws the time axis's words and the legend once and copies them into the next plot
    with the same ones: the copy is the same pixels a plot drawn alone has, and a plot with
    another legend gets its own."""
    day = START + timedelta(days=31)
    drawing._LOCAL.__dict__.clear()
    alone = drawing.png(plots.layout(_section(31), START, day))
    drawing.png(plots.layout(_section(31), START, day))  # the same words under the axes
    copied = drawing.png(plots.layout(_section(31), START, day))
    assert _pixels(copied) == _pixels(alone)
    other = _section(31)
    other.limits.clear()  # no limit: no "over" or limit in the legend
    with Image.open(io.BytesIO(drawing.png(plots.layout(other, START, day)))) as img:
        under = img.crop((0, drawing.BOTTOM + 40, drawing.WIDTH, drawing.HEIGHT))
    with Image.open(io.BytesIO(alone)) as img:
        assert under.tobytes() != img.crop((0, drawing.BOTTOM + 40, drawing.WIDTH, drawing.HEIGHT)).tobytes()


def _pixels(png: bytes) -> bytes:
    with Image.open(io.BytesIO(png)) as img:
        return img.tobytes()


def test_the_words_are_the_readers() -> None:
    t = Texts("mn", "Asia/Ulaanbaatar")
    plot = plots.layout(_section(3), START, START + timedelta(days=3), t)
    assert [m.label for m in plot.marks] == [
        t("report.plot.insufficient"),
        t("report.plot.over", standard=t("standard.who-2021.title")),
        t("report.plot.hourly"),
        t("report.plot.daily"),
        t("report.plot.limit", standard=t("standard.who-2021.title"), value="15", unit="µg/m³"),
    ]
    assert plot.title == t("report.metric.heading", metric="PM2.5", node="haul-road") + " (UTC+08)"
    fig = drawing.figure(plot)
    (legend,) = fig.legends
    assert [text.get_text() for text in legend.get_texts()] == [m.label for m in plot.marks]
    assert fig.axes[0].get_title(loc="left") == plot.title
    assert fig.axes[0].get_ylabel() == "PM2.5 (µg/m³)"


def test_plots_drawn_apart_are_the_same_pixels() -> None:
    """A report that goes on to a PDF draws its plots in a child process (render.plots(apart=True)),
    which hands back the PNGs this process would have drawn, and its own peak memory."""
    day = START + timedelta(days=31)
    layouts = [
        plots.layout(_section(31), START, day),
        plots.layout(_section(365), START, START + timedelta(days=365)),
    ]
    peaks = len(drawing.CHILD_PEAKS_MIB)
    apart = drawing.pngs_apart(layouts)
    assert [_pixels(p) for p in apart] == [_pixels(drawing.png(p)) for p in layouts]
    assert len(drawing.CHILD_PEAKS_MIB) == peaks + 1 and drawing.CHILD_PEAKS_MIB[-1] > 0
    assert drawing.pngs_apart([]) == []


def test_plots_drawn_apart_while_this_process_goes_on() -> None:
    """render.plots(apart=True) hands back at once a mapping whose plots arrive as the child draws
    them (a lookup waits); a layout that fails raises its own error, not the child's."""
    day = START + timedelta(days=31)
    apart = drawing.Apart(["a", "b"], (plots.layout(_section(31), START, day) for _ in range(2)))
    assert list(apart) == ["a", "b"] and _pixels(apart["b"]) == _pixels(apart["a"])
    assert apart.wait() is apart

    def failing() -> Iterator[drawing.Plot]:
        yield plots.layout(_section(31), START, day)
        raise ValueError("no layout")

    with pytest.raises(ValueError, match="no layout"):
        drawing.Apart(["a", "b"], failing()).wait()
