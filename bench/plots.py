"""The report's plots: milliseconds a plot, this tree's gateway/report/plots.py against another
version of that file, side by side in one run.

    .venv/bin/python -u bench/plots.py [--plots 100] [--baseline FILE]

e.g. `git show h40-report:gateway/report/plots.py > /tmp/pillow_plots.py` and `--baseline
/tmp/pillow_plots.py` (the Pillow drawing). The sections are synthetic, like a year's report of
fifty nodes: a year of hourly means (a day in seven with too few readings, a week over the WHO
limit each month, an alert a month) and, for the day's report, one day of them. Each version draws
the same sections in turn (its first plot apart: imports and the figure's making), in `layout`
and in `png`, and the ratio is this tree's to the baseline's.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from contract.i18n import Texts  # noqa: E402
from contract.metrics import Metric  # noqa: E402
from gateway.report import drawing  # noqa: E402
from gateway.report.model import DailyMean, Episode, HourlyMeans, MetricSection  # noqa: E402
from gateway.standards import STANDARDS  # noqa: E402

START = datetime(2026, 1, 1, tzinfo=UTC)


def section(node: int, days: int) -> MetricSection:
    who = STANDARDS["who-2021"]
    limits = [(who, lim) for lim in who.limits if lim.metric is Metric.PM2_5 and lim.average == "24h"]
    daily = [
        DailyMean(
            START + timedelta(days=i),
            (20.0 if i % 30 < 7 else 8.0) + (node + i) % 5,
            1440 if (i + node) % 7 else 100,
            1440,
            60.0,
        )
        for i in range(days)
    ]
    hours = HourlyMeans.of(
        (START + timedelta(hours=h + 1), 5.0 + (h * 7 + node) % 31 + (10 if h // 24 % 30 < 7 else 0))
        for h in range(24 * days)
    )
    episodes = [
        Episode(
            f"n{node}",
            "who-2021-pm2_5-24h",
            "pm2_5",
            START + timedelta(days=d + 2),
            START + timedelta(days=d + 5),
            30.0,
            15.0,
            "24h",
            "warning",
            False,
            who,
        )
        for d in range(0, days - 5, 30)
    ]
    return MetricSection(f"n{node}", Metric.PM2_5, daily, limits, (60.0, START), hours, episodes)


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def run(module: ModuleType, sections: list[MetricSection], days: int, t: Texts) -> tuple[float, float, float]:
    """(first plot, median layout, median png) in ms."""
    end = START + timedelta(days=days)
    png = getattr(module, "png", drawing.png)  # this tree's plots.py lays out; drawing.py draws
    t0 = time.perf_counter()
    png(module.layout(sections[0], START, end, t))
    first = time.perf_counter() - t0
    lay, draw = [], []
    for s in sections:
        t0 = time.perf_counter()
        plot = module.layout(s, START, end, t)
        t1 = time.perf_counter()
        png(plot)
        lay.append(t1 - t0)
        draw.append(time.perf_counter() - t1)
    return 1000 * first, 1000 * statistics.median(lay), 1000 * statistics.median(draw)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--plots", type=int, default=100)
    parser.add_argument("--baseline", type=Path, help="another version of gateway/report/plots.py")
    args = parser.parse_args()
    t = Texts("mn", "Asia/Ulaanbaatar")
    versions = {"this tree": ROOT / "gateway" / "report" / "plots.py"}
    if args.baseline:
        versions["baseline"] = args.baseline
    modules = {name: load(path, f"bench_plots_{i}") for i, (name, path) in enumerate(versions.items())}
    print(f"{args.plots} plots, Mongolian, Asia/Ulaanbaatar; ms a plot (median), first plot apart")
    print(f"{'period':8} {'version':10} {'first':>8} {'layout':>8} {'png':>8} {'total':>8} {'ratio':>7}")
    for days in (365, 1):
        sections = [section(n, days) for n in range(args.plots)]
        totals: dict[str, float] = {}
        for name, module in modules.items():
            first, lay, draw = run(module, sections, days, t)
            totals[name] = lay + draw
            ratio = totals[name] / totals["this tree"]
            print(
                f"{days:4} d   {name:10} {first:8.1f} {lay:8.1f} {draw:8.1f} {lay + draw:8.1f} {ratio:6.2f}x"
            )


if __name__ == "__main__":
    main()
