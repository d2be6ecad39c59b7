"""`minewatch-calibrate show cal.toml`: a calibration in plain words."""

from __future__ import annotations

import argparse
from typing import Any

from calibration import files, presets
from calibration.files import Calibration, Stats
from calibration.stats import PM25_TARGETS
from contract.metrics import METRIC_UNITS, Metric


def add(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("show", help="describe a calibration file in plain words")
    p.add_argument("cal", help="calibration file, or a preset name")
    p.set_defaults(func=run)


def _stats(label: str, s: Stats | None) -> list[str]:
    if s is None:
        return []
    parts = [f"n = {s.n}"]
    for target in PM25_TARGETS:
        value = getattr(s, target.key)
        if value is not None:
            parts.append(f"{target.label} = {value:.3f}")
    return [f"  {label}: " + ", ".join(parts)]


def describe(cal: Calibration) -> str:
    unit = METRIC_UNITS[cal.metric]
    who = " ".join(x for x in (cal.sensor.label, cal.sensor.serial and f"serial {cal.sensor.serial}") if x)
    lines = [
        f"Calibration {cal.id}" + (f" — {cal.description}" if cal.description else ""),
        f"Turns the raw {cal.metric.value} of a {' or '.join(cal.sensor.types)} sensor"
        + (f" ({who})" if who else "")
        + f" into {unit}.",
        f"Formula ({type(cal.model).kind}): {cal.model.formula()}",
        "  where x is the raw reading averaged over the node's window"
        + (" and RH the node's relative humidity (%) in the same window" if cal.model.needs_rh else "")
        + ".",
    ]
    if cal.model.needs_rh:
        lines.append(
            f"Without an RH reading it assumes RH = {cal.rh_fallback:g} % and flags the reading cal_fallback."
        )
    if cal.water_temp is not None:
        wt = cal.water_temp
        lines.append(
            f"Water temperature compensation: x is first replaced by x − {wt.coefficient_per_c:g}·(T − "
            f"{wt.reference_c:g} °C); without a water temperature reading it is skipped and flagged "
            "cal_fallback."
        )
    if cal.range is not None:
        lo, hi = f"{cal.range.min:g}", f"{cal.range.max:g}"
        what = {
            "extrapolate": "the curve is extended",
            "clamp": f"the input is held at {lo} or {hi}",
            "null": "no value is given (null, raw kept)",
        }[cal.range.outside]
        lines.append(
            f"Calibrated for raw readings from {lo} to {hi}; outside that {what} and the reading is "
            "flagged out_of_range."
        )
    if cal.valid_to is None:
        lines.append(f"Valid from {cal.valid_from.isoformat()}, with no end date.")
    else:
        lines.append(
            f"Valid from {cal.valid_from.isoformat()} until {cal.valid_to.isoformat()}; after that the "
            "node flags its readings cal_expired."
        )
    p = cal.provenance
    lines.append(f"Made by: {p.method}" + (f", by {p.by}" if p.by else "") + ".")
    if p.source:
        lines.append(f"Source: {p.source}")
    if p.colocated_from or p.site or p.reference:
        lines.append(
            "Co-located"
            + (f" at {p.site}" if p.site else "")
            + (f" against {p.reference}" if p.reference else "")
            + (
                f" from {p.colocated_from.isoformat()} to {p.colocated_to.isoformat()}"
                if p.colocated_from and p.colocated_to
                else ""
            )
            + (f", {p.n} periods of {p.average}" if p.n is not None and p.average else "")
            + "."
        )
    stats_lines = _stats("before correction", p.before) + _stats("after correction", p.after)
    if stats_lines:
        lines.append(
            "Statistics against the reference"
            + (" (EPA targets: docs/calibration.md)" if cal.metric is Metric.PM2_5 else "")
            + ":"
        )
        lines += stats_lines
    if p.notes:
        lines.append(f"Notes: {p.notes}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    print(describe(files.load(presets.resolve(args.cal))))
    return 0
