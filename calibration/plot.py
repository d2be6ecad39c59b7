"""Plots of a fit for people at their desks: sensor vs reference before and after correction with the
1:1 line, and the three as time series. matplotlib is an optional extra (`pip install
'minewatch[plot]'`), imported here only, so a node never needs it."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from calibration.fit import FitInputError


def fit_plot(
    path: Path,
    starts: Sequence[datetime],
    sensor: Sequence[float],
    reference: Sequence[float],
    corrected: Sequence[float],
    *,
    title: str,
    unit: str,
) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")  # files only: no display on a server or a Pi
        import matplotlib.pyplot as plt
    except ImportError:
        raise FitInputError(
            "--plot needs matplotlib: pip install 'minewatch[plot]' (or leave out --plot)"
        ) from None
    fig = plt.figure(figsize=(12, 8), layout="constrained")
    grid = fig.add_gridspec(2, 2)
    top = max(max(sensor), max(reference), max(corrected)) * 1.05
    low = min(0.0, min(sensor), min(reference), min(corrected))
    for col, (values, label) in enumerate(((sensor, "before (raw)"), (corrected, "after (calibrated)"))):
        ax = fig.add_subplot(grid[0, col])
        ax.scatter(reference, values, s=10, alpha=0.6)
        ax.plot([low, top], [low, top], color="black", linewidth=1, label="1:1")
        ax.set_xlim(low, top)
        ax.set_ylim(low, top)
        ax.set_xlabel(f"reference ({unit})")
        ax.set_ylabel(f"sensor ({unit})")
        ax.set_title(label)
        ax.legend(loc="upper left")
    ax = fig.add_subplot(grid[1, :])
    times: Any = list(starts)  # matplotlib converts datetimes; its stubs only admit numbers
    ax.plot(times, reference, label="reference", color="black")
    ax.plot(times, sensor, label="sensor, raw", alpha=0.7)
    ax.plot(times, corrected, label="sensor, calibrated", alpha=0.7)
    ax.set_ylabel(unit)
    ax.legend(loc="upper left")
    fig.suptitle(title)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
