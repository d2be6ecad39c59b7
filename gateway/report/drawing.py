"""The report's plots drawn by matplotlib (Agg, no pyplot state), as PNG bytes: what a `Plot`
(gateway.report.plots.layout) marks, and nothing else of the gateway. matplotlib is imported here
only, so the node and the gateway's ingest never need it (extra `report`).

A hundred figures built afresh took 70-135 s on a shared core, the figure's machinery rather than
its pixels, so each thread keeps one figure and axes at a fixed position (no layout solver) and a
plot only swaps the artists of its marks: one collection a kind, none a day. Why not SVG:
WeasyPrint lays out an SVG's text one letter at a time (about 0.3 s a plot). RGB, no alpha
channel, as WeasyPrint copies such a PNG's pixels into the PDF without splitting out a mask.

`pngs_apart` draws in a short-lived child process (`python -c` importing this module alone, the
plots pickled in and the PNGs out), so matplotlib and numpy (some 40 MB, and the figure's
buffers) never enter a report's own process, which goes on to lay out the PDF: a year's report
peaks there. This module imports only the standard library at its top, which keeps that child
small.
"""

from __future__ import annotations

import io
import pickle
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from matplotlib.figure import Figure

WIDTH, HEIGHT = 990, 418
"""The plot's size in pixels (the img is scaled to the page's width)."""
DPI = 110
"""Pixels an inch: 9 x 3.8 inches, at which matplotlib's 10-point text reads well on the page."""
LEFT, RIGHT, TOP, BOTTOM = 74, 974, 34, 312
"""The axes' box inside it, in pixels from the top left; the legend sits below."""
UNDER = 6
"""Pixels below the axes from which only the time axis's words and the legend are drawn (the
lowest value's number, centred on the axes' bottom, reaches 5 pixels down)."""

Kind = Literal["insufficient", "over", "alert", "hourly", "band", "daily", "limit"]
_COLOURS: dict[Kind, str] = {
    "insufficient": "#888888",
    "over": "#ff0000",
    "alert": "#ff8c00",
    "hourly": "#4a6fa5",
    "band": "#4a6fa5",
    "daily": "#000000",
    "limit": "#b22222",
}
_SHADE: dict[Kind, float] = {"over": 0.12, "alert": 0.3}


@dataclass(frozen=True, slots=True)
class Marks:
    """One legend entry's marks, in data units: spans of time (`spans`, epoch seconds), a line or
    the band's outline (`points`: seconds, value), level segments (`levels`: from, to, value)."""

    kind: Kind
    label: str
    spans: list[tuple[float, float]] = field(default_factory=list)
    points: list[tuple[float, float]] = field(default_factory=list)
    levels: list[tuple[float, float, float]] = field(default_factory=list)
    dash: str = "-"


@dataclass(frozen=True, slots=True)
class Plot:
    title: str
    y_label: str
    start_s: float
    end_s: float
    y_max: float
    zone: Any  # the tzinfo of the time axis's ticks
    marks: list[Marks]  # drawn in this order; the legend in this order too

    def of(self, kind: Kind) -> list[Marks]:
        return [m for m in self.marks if m.kind == kind]


def png(plot: Plot) -> bytes:
    """The plot drawn, as an RGB PNG of WIDTH x HEIGHT pixels."""
    import numpy as np
    from PIL import Image

    rgba = np.asarray(_canvas().pixels(plot))
    out = io.BytesIO()
    Image.fromarray(rgba).convert("RGB").save(out, "PNG")
    return out.getvalue()


def figure(plot: Plot) -> Figure:
    """The plot on this thread's figure, legend and all (what `png` draws): valid until the
    thread's next plot."""
    canvas = _canvas()
    canvas.set(plot)
    canvas.make_legend(plot)
    return canvas.fig


_LOCAL = threading.local()
"""Each thread's _Canvas (the hub draws reports in a thread pool)."""


def _canvas() -> _Canvas:
    canvas: _Canvas | None = getattr(_LOCAL, "canvas", None)
    if canvas is None:
        canvas = _LOCAL.canvas = _Canvas()
    return canvas


class _Canvas:
    """A figure and its axes, made once a thread, with an artist for each kind of mark (one
    collection for all its spans or levels): a plot sets their data, shows those it has and
    makes only its legend anew."""

    def __init__(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.collections import LineCollection, PolyCollection
        from matplotlib.figure import Figure
        from matplotlib.lines import Line2D
        from matplotlib.patches import Polygon

        self.fig = Figure(figsize=(WIDTH / DPI, HEIGHT / DPI), dpi=DPI, facecolor="white")
        FigureCanvasAgg(self.fig)
        box = (LEFT / WIDTH, 1 - BOTTOM / HEIGHT, (RIGHT - LEFT) / WIDTH, (BOTTOM - TOP) / HEIGHT)
        ax = self.ax = self.fig.add_axes(box)
        ax.set_autoscale_on(False)
        ax.grid(True, color="#dddddd", linewidth=0.8)
        ax.set_axisbelow(True)
        ax.tick_params(labelsize=9)
        ax.yaxis.set_major_locator(_y_locator())
        over_time = ax.get_xaxis_transform()  # x in data, y from the axes' bottom (0) to top (1)
        hatched: dict[str, Any] = {"facecolor": "none", "edgecolor": _COLOURS["insufficient"], "hatch": "//"}
        self.artists: dict[Kind, Any] = {
            "insufficient": PolyCollection([], transform=over_time, linewidth=0, zorder=0.5, **hatched),
            **{
                kind: PolyCollection(
                    [], transform=over_time, facecolor=_COLOURS[kind], alpha=a, linewidth=0, zorder=0.5
                )
                for kind, a in _SHADE.items()
            },
            "hourly": Line2D([], [], color=_COLOURS["hourly"], linewidth=1.0),
            "band": Polygon([(0, 0)], color=_COLOURS["band"], linewidth=0.8),
            "daily": LineCollection([], color=_COLOURS["daily"], linewidth=1.6),
        }
        for artist in self.artists.values():
            ax.add_artist(artist)  # not add_line, add_patch: the limits are set, not found
        self.limits: list[Any] = []  # one a standard's limit, made when a plot first has that many
        self.legend: Any = None
        self.handles: list[Any] = []
        self.under: dict[tuple[object, ...], Any] = {}  # the pixels under the axes, by what they show

    def pixels(self, plot: Plot) -> memoryview:
        """The plot's RGBA pixels. What lies under the axes (the time axis's words and the legend,
        nine tenths of a plot's text, which matplotlib lays out and rasterises anew each draw) is
        the same for every plot of a report: drawn once and copied into the others."""
        from matplotlib.transforms import Bbox

        canvas = self.fig.canvas
        self.set(plot)
        key = (plot.start_s, plot.end_s, str(plot.zone), *((m.kind, m.label, m.dash) for m in plot.marks))
        under = self.under.get(key)
        if under is None:
            self.make_legend(plot)
            canvas.draw()
            if len(self.under) >= 8:  # a report has a few: a legend a metric
                self.under.clear()
            region = Bbox(((0, 0), (WIDTH, HEIGHT - BOTTOM - UNDER)))  # from the bottom up
            self.under[key] = canvas.copy_from_bbox(region)  # type: ignore[attr-defined]
        else:
            self.ax.xaxis.set_tick_params(labelbottom=False)
            self.ax.xaxis.get_offset_text().set_visible(False)
            canvas.draw()
            canvas.restore_region(under)  # type: ignore[attr-defined]
            self.ax.xaxis.set_tick_params(labelbottom=True)
            self.ax.xaxis.get_offset_text().set_visible(True)
        return canvas.buffer_rgba()  # type: ignore[attr-defined]

    def make_legend(self, plot: Plot) -> None:
        """Two columns below the axes, so the legend never hides the data (three of the longer
        Mongolian labels in a row ran off the page)."""
        if self.handles:
            self.legend = self.fig.legend(
                self.handles,
                [m.label for m in plot.marks],
                loc="upper center",
                bbox_to_anchor=(0.5, 1 - (BOTTOM + 38) / HEIGHT),
                ncols=2,
                fontsize=7,
                frameon=False,
                handlelength=2.5,
            )

    def set(self, plot: Plot) -> None:
        """The plot's data, limits, ticks and words, without its legend."""
        import numpy as np
        from matplotlib.collections import LineCollection
        from matplotlib.dates import AutoDateLocator, ConciseDateFormatter, date2num

        ax = self.ax
        epoch = float(date2num(datetime.fromtimestamp(0, UTC)))  # 0.0 unless rcParams say otherwise

        def x(seconds: Any) -> Any:  # matplotlib's dates: days since its epoch
            return epoch + np.asarray(seconds, dtype=float) / 86400

        for artist in (*self.artists.values(), *self.limits):
            artist.set_visible(False)
        handles = []
        n_limits = 0
        for m in plot.marks:
            if m.kind == "limit":
                if n_limits == len(self.limits):
                    limit = LineCollection([], color=_COLOURS["limit"], linewidth=1.2)
                    self.limits.append(ax.add_artist(limit))
                artist = self.limits[n_limits]
                artist.set_linestyle(m.dash)
                n_limits += 1
            else:
                artist = self.artists[m.kind]
            if m.spans:
                lo, hi = x([s[0] for s in m.spans]), x([s[1] for s in m.spans])
                zero, one = np.zeros_like(lo), np.ones_like(lo)
                # each span a rectangle: (lo, 0), (lo, 1), (hi, 1), (hi, 0)
                artist.set_verts(np.stack([np.stack([lo, zero], 1), np.stack([lo, one], 1),
                                           np.stack([hi, one], 1), np.stack([hi, zero], 1)], 1))  # fmt: skip
            elif m.kind == "hourly":
                artist.set_data(x([p[0] for p in m.points]), [p[1] for p in m.points])
            elif m.kind == "band":
                artist.set_xy(np.column_stack([x([p[0] for p in m.points]), [p[1] for p in m.points]]))
            else:
                lv = np.asarray(m.levels, dtype=float)
                ends = np.stack(
                    [np.column_stack([x(lv[:, 0]), lv[:, 2]]), np.column_stack([x(lv[:, 1]), lv[:, 2]])], 1
                )
                artist.set_segments(ends)
            artist.set_visible(True)
            handles.append(artist)
        ax.set_xlim(x(plot.start_s), x(plot.end_s))
        ax.set_ylim(0, plot.y_max)
        # few ticks, at round times of the site's zone; numbers only: a month's abbreviation
        # ("Nov") would be English on a Mongolian plot. The date or year beside the axis's end.
        locator = AutoDateLocator(tz=plot.zone, minticks=3, maxticks=8)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(
            ConciseDateFormatter(
                locator,
                tz=plot.zone,
                formats=["%Y", "%Y-%m", "%m-%d", "%H:%M", "%H:%M", "%S.%f"],
                zero_formats=["", "%Y", "%Y-%m", "%m-%d", "%H:%M", "%H:%M"],
                offset_formats=["", "%Y", "%Y", "%Y-%m-%d", "%Y-%m-%d", "%Y-%m-%d %H:%M"],
            )
        )
        ax.set_title(plot.title, loc="left", fontsize=10)
        ax.set_ylabel(plot.y_label, fontsize=9)
        if self.legend is not None:
            self.legend.remove()
            self.legend = None
        self.handles = handles


def _y_locator() -> Any:
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(nbins=6, steps=[1, 2, 2.5, 5, 10])


CHILD_PEAKS_MIB: list[float] = []
"""The peak resident memory (VmHWM) of each drawing child, in order: what a bench adds to its own."""
_SERVE = "import sys; sys.path[:0] = sys.argv[1:]; from gateway.report.drawing import serve; serve()"


def pngs_apart(plots: Iterable[Plot]) -> list[bytes]:
    """`png` of each plot, drawn in a child process that exits before this returns."""
    plots = list(plots)
    return list(Apart(list(range(len(plots))), plots).wait().values())


K = TypeVar("K")


class Apart(Mapping[K, bytes]):
    """The PNGs of `plots` (one a key of `keys`, in order), drawn in a child process that starts at
    once and exits when the last is drawn, while this process goes on: looking a plot up waits
    for it, `wait` for the child's end. One plot at a time each way (a thread here hands them in
    as `plots` yields them, another takes the PNGs out), so neither process holds them all: a
    year's hundred plots pickled at once were 30 MB in each. The child runs `python -c`,
    importing this module alone."""

    def __init__(self, keys: list[K], plots: Iterable[Plot]) -> None:
        self._index = {k: i for i, k in enumerate(keys)}
        self._pngs: list[bytes] = []
        self._changed = threading.Condition()
        self._failed: list[BaseException] = []
        self._sent = 0
        self._finished = False
        self._code: int | None = None
        self._errors = tempfile.TemporaryFile()  # noqa: SIM115 (closed by `wait`, after this returns)
        self._proc = (
            None
            if not keys
            else subprocess.Popen(
                [sys.executable, "-c", _SERVE, *(p for p in sys.path if p)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._errors,
            )
        )
        self._threads = [] if self._proc is None else [
            threading.Thread(target=self._hand_in, args=(plots,), daemon=True),
            threading.Thread(target=self._take_out, daemon=True),
        ]  # fmt: skip
        for thread in self._threads:
            thread.start()

    def _hand_in(self, plots: Iterable[Plot]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            with self._proc.stdin as pipe:
                for plot in plots:
                    pickle.dump(plot, pipe, protocol=pickle.HIGHEST_PROTOCOL)
                    self._sent += 1
                pickle.dump(None, pipe)
        except BrokenPipeError:  # the child failed: its stderr says why
            pass
        except BaseException as exc:  # a plot's layout failed: raised by `wait`, not the child's EOF
            self._failed.append(exc)

    def _take_out(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        with self._proc.stdout as pipe:
            try:
                while not isinstance(answer := pickle.load(pipe), float):
                    with self._changed:
                        self._pngs.append(answer)
                        self._changed.notify_all()
                CHILD_PEAKS_MIB.append(answer)  # after the last PNG, the child's peak memory
            except EOFError:
                pass
        self._code = self._proc.wait()
        with self._changed:
            self._finished = True
            self._changed.notify_all()

    def __getitem__(self, key: K) -> bytes:
        i = self._index[key]
        with self._changed:
            self._changed.wait_for(lambda: len(self._pngs) > i or self._finished)
        if i >= len(self._pngs):
            self.wait()  # raises why
        return self._pngs[i]

    def __iter__(self) -> Iterator[K]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)

    def wait(self) -> Apart[K]:
        """Wait for the child to exit; raise if a plot was not drawn."""
        for thread in self._threads:
            thread.join()
        if not self._errors.closed:
            if self._proc is not None and (self._code != 0 or len(self._pngs) != len(self._index)):
                self._errors.seek(0)
                message = self._errors.read().decode(errors="replace")[-2000:]
                self._failed.append(RuntimeError(f"drawing the plots failed ({self._code}): {message}"))
            self._errors.close()
        if self._failed:
            raise self._failed[0]
        return self


def serve() -> None:
    """The child's side of `pngs_apart`: pickled plots on stdin up to a None, each one's PNG on
    stdout as it is drawn, then this process's peak memory (MiB, a float)."""
    source, out = sys.stdin.buffer, sys.stdout.buffer
    while (plot := pickle.load(source)) is not None:
        pickle.dump(png(plot), out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
    peak = 0.0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                peak = int(line.split()[1]) / 1024
    pickle.dump(peak, out)
    out.flush()
