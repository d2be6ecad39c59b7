"""Time-series plots for the report, as PNG bytes, drawn with Pillow (no plotting library).

One plot per node and metric: hourly means, the judged days' means as level lines, each standard's
24-hour limit as a line, days whose complete mean is over the lowest limit shaded red, days with
too few readings to be judged hatched (and no mean drawn for them), and the exceedances from the
`alert` measurement (start to end) shaded orange.

`layout` says what is drawn (marks in data units, with their legend's words: what a test reads
back); `png` rasterises it. Why not matplotlib: a hundred figures (fifty nodes, two metrics) took
70-135 s on a shared core, the figure's machinery rather than its pixels; these take some 20 ms.
Why not SVG: WeasyPrint lays out an SVG's text one letter at a time (about 0.3 s a plot). Drawn
at twice the size and reduced, so lines and text are smooth; RGB, no alpha channel, as WeasyPrint
copies such a PNG's pixels into the PDF without splitting out a mask.
"""

from __future__ import annotations

import io
import math
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Literal

from contract.i18n import Texts
from contract.metrics import METRIC_UNITS
from gateway.report.model import DAY, MetricSection
from gateway.standards import Standard

if TYPE_CHECKING:
    from PIL import Image, ImageDraw, ImageFont

WIDTH, HEIGHT = 990, 418
"""The plot's size in pixels (the img is scaled to the page's width)."""
LEFT, RIGHT, TOP, BOTTOM = 74, 974, 34, 312
"""The axes' box inside it; the legend sits below."""
DENSE = 900
"""Hourly means beyond which the plot draws the band each pixel's hours span rather than their line."""
EN = Texts("en")
"""The words of a report nobody asked in another language: English, times in UTC."""
SCALE = 2
"""Drawn at twice the size, then reduced: Pillow's lines are not anti-aliased."""
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
"""Debian's fonts-dejavu-core (`make deps`), which has Cyrillic; else what fontconfig finds."""

Kind = Literal["insufficient", "over", "alert", "hourly", "band", "daily", "limit"]
_COLOURS: dict[Kind, tuple[int, int, int]] = {
    "insufficient": (136, 136, 136),
    "over": (255, 0, 0),
    "alert": (255, 140, 0),
    "hourly": (74, 111, 165),
    "band": (74, 111, 165),
    "daily": (0, 0, 0),
    "limit": (178, 34, 34),
}
_SHADE = {"over": 0.12, "alert": 0.3}
_DASHES = ((8, 4), (8, 3, 2, 3), (2, 3))
_STEPS = (
    [timedelta(hours=h) for h in (1, 2, 3, 6, 12)]
    + [timedelta(days=d) for d in (1, 2, 7, 14)]
    + [timedelta(days=30 * m) for m in (1, 2, 3, 6)]
    + [timedelta(days=365)]
)


@dataclass(frozen=True, slots=True)
class Marks:
    """One legend entry's marks, in data units: spans of time (`spans`, epoch seconds), a line or
    the band's outline (`points`: seconds, value), level segments (`levels`: from, to, value)."""

    kind: Kind
    label: str
    spans: list[tuple[float, float]] = field(default_factory=list)
    points: list[tuple[float, float]] = field(default_factory=list)
    levels: list[tuple[float, float, float]] = field(default_factory=list)
    dash: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True)
class Plot:
    title: str
    y_label: str
    start_s: float
    end_s: float
    y_max: float
    y_ticks: list[float]
    x_ticks: list[tuple[float, str, str]]  # seconds, words, the date under it (or "")
    marks: list[Marks]  # drawn in this order; the legend in this order too

    def of(self, kind: Kind) -> list[Marks]:
        return [m for m in self.marks if m.kind == kind]


def metric_png(
    section: MetricSection, start: datetime, end: datetime, t: Texts = EN, site: str = ""
) -> bytes:
    return png(layout(section, start, end, t, site))


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
    if len(values) > DENSE:
        # More hours than the plot has pixels: the band each pixel's hours span, which is what
        # their line looks like (a year is 8,760 hours for 900 pixels)
        mids, lows, highs = _envelope(list(hours.times_s), values, len(values) // DENSE + 1)
        ring = [*zip(mids, highs, strict=True), *reversed(list(zip(mids, lows, strict=True)))]
        marks.append(Marks("band", t("report.plot.hourly"), points=ring))
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
    step = _nice_step(top / 5)
    y_max = step * math.ceil(top * 1.05 / step)
    name = t.short(section.metric.value)
    heading = t("report.metric.heading", metric=name, node=t.node_name(site, section.node))
    return Plot(
        title=f"{heading} ({t.zone_of(start)})",
        y_label=f"{name} ({METRIC_UNITS[section.metric]})",
        start_s=t0,
        end_s=t1,
        y_max=y_max,
        y_ticks=[i * step for i in range(round(y_max / step) + 1)],
        x_ticks=_x_ticks(start, end, t),
        marks=marks,
    )


def png(plot: Plot) -> bytes:
    from PIL import Image, ImageDraw

    s = SCALE
    img = Image.new("RGB", (WIDTH * s, HEIGHT * s), "white")
    draw = ImageDraw.Draw(img)
    small, normal, big = _font(10 * s), _font(11 * s), _font(13 * s)
    span_s = plot.end_s - plot.start_s

    def x(ts: float) -> float:
        return s * (LEFT + (RIGHT - LEFT) * (min(max(ts, plot.start_s), plot.end_s) - plot.start_s) / span_s)

    def y(v: float) -> float:
        return s * (BOTTOM - (BOTTOM - TOP) * min(max(v, 0.0), plot.y_max) / plot.y_max)

    top, bottom = TOP * s, BOTTOM * s
    for m in plot.marks:  # the shaded days first: the grid and the data over them
        colour = _COLOURS[m.kind]
        if m.kind == "insufficient":
            _hatch(img, [(x(a), x(b)) for a, b in m.spans], top, bottom, colour)
        elif m.spans:
            a = _SHADE[m.kind]
            tint = (*(round(255 * (1 - a) + c * a) for c in colour),)
            for lo, hi in m.spans:  # a tint over white, not a translucent layer: cheaper, same look
                draw.rectangle([x(lo), top, max(x(hi), x(lo) + 1), bottom], fill=tint)
    grid = (221, 221, 221)
    for v in plot.y_ticks:
        draw.line([(LEFT * s, y(v)), (RIGHT * s, y(v))], fill=grid, width=s)
        draw.text(((LEFT - 5) * s, y(v)), f"{v:g}", fill="black", font=normal, anchor="rm")
    for ts, words, under in plot.x_ticks:
        draw.line([(x(ts), top), (x(ts), bottom + 4 * s)], fill=grid, width=s)
        draw.text((x(ts), bottom + 8 * s), words, fill="black", font=normal, anchor="mt")
        if under:
            draw.text((x(ts), bottom + 21 * s), under, fill="black", font=normal, anchor="mt")
    for m in plot.marks:
        colour = _COLOURS[m.kind]
        if m.kind == "band":
            draw.polygon([(x(a), y(v)) for a, v in m.points], fill=colour, outline=colour)
        elif m.kind == "hourly":
            draw.line([(x(a), y(v)) for a, v in m.points], fill=colour, width=2)
        for lo, hi, v in m.levels:
            if m.dash:
                _dashed(draw, x(lo), x(hi), y(v), [d * s for d in m.dash], colour, round(1.3 * s))
            else:
                draw.line([(x(lo), y(v)), (x(hi), y(v))], fill=colour, width=2 * s)
    draw.rectangle([LEFT * s, top, RIGHT * s, bottom], outline=(51, 51, 51), width=s)
    draw.text((LEFT * s, (TOP - 8) * s), plot.title, fill="black", font=big, anchor="ls")
    label = Image.new("RGB", (round(draw.textlength(plot.y_label, font=normal)) + 4, 16 * s), "white")
    ImageDraw.Draw(label).text((2, 8 * s), plot.y_label, fill="black", font=normal, anchor="lm")
    rotated = label.rotate(90, expand=True)
    img.paste(rotated, (8 * s, round((top + bottom - rotated.height) / 2)))
    # the legend: two columns below the axes, so it never hides the data (three of the longer
    # Mongolian labels in a row ran off the page)
    for i, m in enumerate(plot.marks):
        lx, ly = (LEFT + 20 + (i % 2) * 450) * s, (BOTTOM + 40 + (i // 2) * 16) * s
        colour = _COLOURS[m.kind]
        box = [lx, ly, lx + 14 * s, ly + 9 * s]
        if m.kind == "insufficient":
            _hatch(img, [(box[0], box[2])], box[1], box[3], colour)
            draw.rectangle(box, outline=colour, width=1)
        elif m.kind in _SHADE:
            a = _SHADE[m.kind]
            draw.rectangle(box, fill=tuple(round(255 * (1 - a) + c * a) for c in colour))
        elif m.dash:
            _dashed(draw, box[0], box[2], ly + 4.5 * s, [d * s for d in m.dash], colour, round(1.3 * s))
        else:
            draw.line([(box[0], ly + 4.5 * s), (box[2], ly + 4.5 * s)], fill=colour, width=2 * s)
        draw.text((lx + 20 * s, ly + 4.5 * s), m.label, fill="black", font=small, anchor="lm")
    out = io.BytesIO()
    img.reduce(s).save(out, format="PNG", compress_level=6)
    return out.getvalue()


def _hatch(
    img: Image.Image,
    spans: list[tuple[float, float]],
    top: float,
    bottom: float,
    colour: tuple[int, int, int],
) -> None:
    """Diagonal lines, 6 px apart, over each span."""
    from PIL import Image, ImageDraw

    gap = 6 * SCALE
    height = bottom - top
    for lo, hi in spans:
        tile = Image.new("RGB", (max(1, round(hi - lo)), max(1, round(height))), "white")
        tile_draw = ImageDraw.Draw(tile)
        for k in range(-round(height), tile.width + gap, gap):
            tile_draw.line([(k, tile.height), (k + tile.height, 0)], fill=colour, width=max(1, SCALE - 1))
        img.paste(tile, (round(lo), round(top)))


def _dashed(
    draw: ImageDraw.ImageDraw,
    x0: float,
    x1: float,
    y: float,
    pattern: list[int],
    colour: tuple[int, int, int],
    width: int,
) -> None:
    """A horizontal line in dashes of `pattern` (on, off, ...): Pillow draws none."""
    pos, i = x0, 0
    while pos < x1:
        length = pattern[i % len(pattern)]
        if i % 2 == 0:
            draw.line([(pos, y), (min(pos + length, x1), y)], fill=colour, width=width)
        pos += length
        i += 1


@cache
def _font(size: int) -> ImageFont.FreeTypeFont:
    from PIL import ImageFont

    try:
        return ImageFont.truetype(FONT, size)
    except OSError:
        found = subprocess.run(
            ["fc-match", "--format=%{file}", "DejaVu Sans"], capture_output=True, text=True, check=False
        ).stdout
        if not found:
            raise RuntimeError(
                f"no DejaVu Sans for the report's plots at {FONT}: install fonts-dejavu-core (make deps)"
            ) from None
        return ImageFont.truetype(found, size)


def _nice_step(raw: float) -> float:
    """1, 2, 2.5 or 5 times a power of ten, the smallest at least `raw`."""
    power = 10.0 ** math.floor(math.log10(raw)) if raw > 0 else 1.0
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)


def _x_ticks(start: datetime, end: datetime, t: Texts) -> list[tuple[float, str, str]]:
    """At most ten ticks at round local times: hours, days, months or years; numbers only (a
    month's abbreviation would be English on a Mongolian plot), with the date under the first
    tick and under each midnight when the ticks are hours, the year under each new year's day."""
    step = next((s for s in _STEPS if (end - start) / s <= 10), _STEPS[-1])
    out: list[tuple[float, str, str]] = []
    for tick in _ticks(t.local(start), t.local(end), step):
        if step < DAY:
            words = f"{tick:%H:%M}"
            under = f"{tick:%Y-%m-%d}" if not out or (tick.hour, tick.minute) == (0, 0) else ""
        elif step < timedelta(days=28):
            words = f"{tick:%m-%d}"
            under = f"{tick:%Y}" if not out or (tick.month, tick.day) == (1, 1) else ""
        elif step < timedelta(days=365):
            words, under = f"{tick:%Y-%m}", ""
        else:
            words, under = f"{tick:%Y}", ""
        out.append((tick.timestamp(), words, under))
    return out


def _ticks(lo: datetime, hi: datetime, step: timedelta) -> list[datetime]:
    """Round local times in [lo, hi]: whole hours, midnights, Mondays, first days of months."""
    out = []
    if step < DAY:
        every = int(step.total_seconds() // 3600)
        tick = lo.replace(minute=0, second=0, microsecond=0)
        while tick <= hi:
            if tick >= lo and tick.hour % every == 0:
                out.append(tick)
            tick = (tick + timedelta(hours=1)).astimezone(lo.tzinfo)
        return out
    day = lo.replace(hour=0, minute=0, second=0, microsecond=0)
    while day <= hi:
        n = day.toordinal()
        if step < timedelta(days=7):
            keep = n % step.days == 0
        elif step < timedelta(days=28):
            keep = day.weekday() == 0 and (n // 7) % (step.days // 7) == 0
        else:
            months = 12 if step.days >= 365 else step.days // 30
            keep = day.day == 1 and (day.month - 1) % months == 0
        if keep and day >= lo:
            out.append(day)
        # the next local midnight (a day is not always 24 hours long where clocks change)
        day = (day + timedelta(hours=25)).replace(hour=0, minute=0, second=0, microsecond=0)
    return out


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
