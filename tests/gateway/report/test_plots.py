"""The report's plots: what `plots.layout` marks (the same marks `plots.png` draws) and the time
axis's ticks, in the site's zone, for a day, a month and a year."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from contract.i18n import Texts
from contract.metrics import Metric
from gateway.report import plots
from gateway.report.model import DailyMean, HourlyMeans, MetricSection
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
    ("days", "zone", "words", "under"),
    [
        (1, "UTC", "00:00", "2026-01-01"),  # hours, the date under the first
        (1, "Asia/Ulaanbaatar", "09:00", "2026-01-01"),  # the site's hours, not UTC's
        (31, "UTC", "01-05", "2026"),  # Mondays
        (365, "Asia/Ulaanbaatar", "2026-03", ""),  # every other month (local 01-01 is before the start)
    ],
)
def test_the_time_axis_has_at_most_ten_round_local_ticks(
    days: int, zone: str, words: str, under: str
) -> None:
    t = Texts("en", zone)
    plot = plots.layout(_section(days), START, START + timedelta(days=days), t)
    assert 3 <= len(plot.x_ticks) <= 10
    assert all(plot.start_s <= s <= plot.end_s for s, _, _ in plot.x_ticks)
    first_s, first, first_under = plot.x_ticks[0]
    assert (first, first_under) == (words, under)
    local = datetime.fromtimestamp(first_s, t.zone)
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
    with Image.open(io.BytesIO(plots.png(plot))) as img:
        assert img.size == (plots.WIDTH, plots.HEIGHT) and img.mode == "RGB"


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
