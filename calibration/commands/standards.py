"""`minewatch-calibrate standards`: a turbidity calibration from readings of standard solutions
(formazin or StablCal), as a piecewise-linear curve through the mean reading of each standard."""

from __future__ import annotations

import argparse
import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from calibration import files, tomlwrite
from calibration.fit import FitInputError, curve_from_standards, parse_number


def add(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("standards", help="a turbidity curve from standard solutions")
    p.add_argument("--input", required=True, type=Path, help="CSV: one row per reading of a standard")
    p.add_argument("--raw-column", default="raw", help="the probe's reading: volts or counts (default raw)")
    p.add_argument("--ntu-column", default="ntu", help="the standard's turbidity in NTU (default ntu)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--id", help="calibration id (default: <sensor>-<serial or turbidity>@<date>)")
    p.add_argument("--sensor-type", default="turbidity-ads1115")
    p.add_argument("--serial", help="serial number or label of the probe")
    p.add_argument("--standards", dest="standard_name", default="formazin", help="formazin or StablCal …")
    p.add_argument("--by", help="who read the standards")
    p.add_argument("--valid-days", type=int, default=90, help="validity from today (default 90 days)")
    p.set_defaults(func=run)


def _read(path: Path, raw_col: str, ntu_col: str) -> tuple[list[float], list[float]]:
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise FitInputError(f"{path}: cannot open: {exc.strerror}") from None
    raw: list[float] = []
    ntu: list[float] = []
    with handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        for name in (raw_col, ntu_col):
            if name not in header:
                raise FitInputError(f"{path}: row 1: no column {name!r} (the header has {header})")
        for line, row in enumerate(reader, start=2):
            r = parse_number(row.get(raw_col) or "", f"{path}: row {line}: column {raw_col!r}")
            n = parse_number(row.get(ntu_col) or "", f"{path}: row {line}: column {ntu_col!r}")
            if r is None or n is None:
                raise FitInputError(
                    f"{path}: row {line}: every reading needs both {raw_col!r} and {ntu_col!r}"
                )
            if n < 0:
                raise FitInputError(f"{path}: row {line}: column {ntu_col!r}: a standard cannot be {n:g} NTU")
            raw.append(r)
            ntu.append(n)
    return raw, ntu


def run(args: argparse.Namespace) -> int:
    raw, ntu = _read(args.input, args.raw_column, args.ntu_column)
    curve = curve_from_standards(raw, ntu, str(args.input))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    xs = [x for x, _ in curve.points]
    doc: dict[str, Any] = {
        "id": args.id or f"{args.sensor_type}-{args.serial or 'turbidity'}@{today.date().isoformat()}",
        "metric": "turbidity",
        "model": "piecewise-linear",
        "description": f"curve through {len(curve.points)} {args.standard_name} standards",
        "valid_from": today,
        "valid_to": today + timedelta(days=args.valid_days),
        "sensor": {"type": args.sensor_type, "serial": args.serial},
        "coefficients": {"points": [list(p) for p in curve.points]},
        "range": {"min": min(xs), "max": max(xs), "outside": "extrapolate"},
        "provenance": {
            "method": "standard solutions, piecewise-linear through the mean reading of each standard",
            "reference": f"{args.standard_name} standards: "
            + ", ".join(f"{y:g}" for y in sorted({*ntu}))
            + " NTU",
            "by": args.by,
            "created": datetime.now(UTC).replace(microsecond=0),
            "n": len(raw),
        },
    }
    cal = files.parse(doc, args.out)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(tomlwrite.dumps(doc), encoding="utf-8")
    print(f"{cal.id}: {cal.model.formula()}")
    print(f"{'reading':>12} {'standard NTU':>14} {'curve NTU':>12} {'residual':>10}")
    for r, n in zip(raw, ntu, strict=True):
        y = cal.model.apply(r)
        print(f"{r:>12.4f} {n:>14.2f} {y:>12.2f} {y - n:>+10.2f}")
    print("The curve is monotonic. Residuals show how well repeated readings of one standard agree.")
    print(f"wrote {args.out}")
    return 0
