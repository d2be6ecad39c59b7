"""The statistics the US EPA uses to judge PM2.5 sensors against a reference, and its targets.

Definitions and targets: US EPA, "Performance Testing Protocols, Metrics, and Target Values for Fine
Particulate Matter Air Sensors" (Duvall et al., EPA/600/R-20/280, February 2021), as implemented in
the EPA's own sensortoolkit (USEPA/sensortoolkit, `param/_targets.py`, `calculate/_rmse.py`):

- slope and intercept of the ordinary least squares line sensor = slope·reference + intercept,
  and its coefficient of determination R²;
- RMSE = √(mean((sensor − reference)²)); NRMSE = RMSE / mean(reference) · 100 %.

Targets (base testing, 24-h averages): slope 1.0 ± 0.35, intercept −5…5 µg/m³, R² ≥ 0.70,
RMSE ≤ 7 µg/m³ or NRMSE ≤ 30 %.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from calibration.files import Stats


@dataclass(frozen=True, slots=True)
class Target:
    key: str
    label: str
    low: float | None
    high: float | None
    text: str

    def met(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


PM25_TARGETS: tuple[Target, ...] = (
    Target("r2", "R²", 0.70, None, "≥ 0.70"),
    Target("slope", "slope", 0.65, 1.35, "1.0 ± 0.35"),
    Target("intercept", "intercept", -5.0, 5.0, "−5 … 5 µg/m³"),
    Target("rmse", "RMSE", None, 7.0, "≤ 7 µg/m³ (or NRMSE)"),
    Target("nrmse_pct", "NRMSE", None, 30.0, "≤ 30 % (or RMSE)"),
)
"""US EPA 2021 PM2.5 sensor performance targets (module docstring). RMSE and NRMSE are alternatives:
meeting either meets the error target."""


def compute(sensor: Sequence[float], reference: Sequence[float]) -> Stats:
    """Sensor (or corrected sensor) values against paired reference values."""
    s = np.asarray(sensor, dtype=float)
    r = np.asarray(reference, dtype=float)
    if s.shape != r.shape:
        raise ValueError("sensor and reference must pair up")
    n = int(s.size)
    if n == 0:
        return Stats(n=0)
    rmse = float(math.sqrt(float(np.mean((s - r) ** 2))))
    mean_r = float(np.mean(r))
    nrmse = rmse / mean_r * 100 if mean_r > 0 else None
    dr = r - mean_r
    ds = s - float(np.mean(s))
    srr = float(np.dot(dr, dr))
    sss = float(np.dot(ds, ds))
    if n < 2 or srr == 0:
        return Stats(n=n, rmse=rmse, nrmse_pct=nrmse)
    slope = float(np.dot(dr, ds)) / srr
    intercept = float(np.mean(s)) - slope * mean_r
    r2 = float(np.dot(dr, ds)) ** 2 / (srr * sss) if sss > 0 else None
    return Stats(n=n, r2=r2, slope=slope, intercept=intercept, rmse=rmse, nrmse_pct=nrmse)


def error_target_met(stats: Stats) -> bool | None:
    """RMSE ≤ 7 µg/m³ or NRMSE ≤ 30 %: the EPA accepts either."""
    rmse, nrmse = PM25_TARGETS[3].met(stats.rmse), PM25_TARGETS[4].met(stats.nrmse_pct)
    if rmse is None and nrmse is None:
        return None
    return bool(rmse) or bool(nrmse)


def _fmt(value: float | int | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, int):
        return str(value)
    return f"{value:.3f}"


def _mark(ok: bool | None) -> str:
    return {True: "meets", False: "misses", None: ""}[ok]


def table(before: Stats, after: Stats, *, pm: bool, average: str) -> str:
    """A plain-text table: each statistic before and after correction, against the EPA target."""
    head = f"{'':<10} {'before':>10} {'after':>10}   "
    if pm:
        rows = [
            head
            + "EPA target (set for 24-h averages"
            + ("" if average == "24h" else f"; these are {average}")
            + ")"
        ]
    else:
        rows = [head + "(the EPA targets are for PM2.5 only)"]
    rows.append(f"{'n':<10} {_fmt(before.n):>10} {_fmt(after.n):>10}")
    for target in PM25_TARGETS:
        b, a = getattr(before, target.key), getattr(after, target.key)
        line = f"{target.label:<10} {_fmt(b):>10} {_fmt(a):>10}"
        if pm:
            verdicts = f"before {_mark(target.met(b)) or '—'}, after {_mark(target.met(a)) or '—'}"
            line += f"   {target.text:<22} {verdicts}"
        rows.append(line)
    if pm:
        rows.append(
            f"{'error':<10} {'':>10} {'':>10}   RMSE or NRMSE          "
            f"before {_mark(error_target_met(before)) or '—'}, after {_mark(error_target_met(after)) or '—'}"
        )
    return "\n".join(rows)
