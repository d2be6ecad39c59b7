"""`minewatch-calibrate apply`: recompute calibrated values from raw ones, exactly as the node did.

A regulator exports `<metric>_raw` (and `rh_raw`, `water_temp_raw` where the calibration uses them)
with `<metric>_cal` from InfluxDB, gets the calibration file (or names the preset), and compares this
command's `value` column with the stored `<metric>` field: they must be equal to the last digit.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path
from typing import Any, TextIO

from calibration import files, presets
from calibration.fit import FitInputError, parse_number
from contract import csvcell
from contract.flags import Flag
from contract.metrics import PHYSICAL_RANGE


def add(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("apply", help="recompute calibrated values from raw ones")
    p.add_argument("--cal", required=True, help="calibration file, or a preset name")
    p.add_argument("--input", required=True, type=Path, help="CSV with a raw column")
    p.add_argument("--column", help="raw values column (default: raw, or <metric>_raw)")
    p.add_argument("--rh-column", help="RH column (default: rh_raw or rh, when present)")
    p.add_argument(
        "--water-temp-column", help="water temperature column (default: water_temp_raw or water_temp)"
    )
    p.add_argument("--out", type=Path, help="write the CSV here instead of standard output")
    p.set_defaults(func=run)


def _pick(header: list[str], given: str | None, candidates: list[str], what: str, path: Path) -> str | None:
    if given is not None:
        if given not in header:
            raise FitInputError(f"{path}: row 1: no column {given!r} for {what} (the header has {header})")
        return given
    return next((c for c in candidates if c in header), None)


def _cell(text: str | None) -> str:
    return "" if text is None else text


def run(args: argparse.Namespace) -> int:
    cal = files.load(presets.resolve(args.cal))
    metric = cal.metric.value
    try:
        handle = args.input.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise FitInputError(f"{args.input}: cannot open: {exc.strerror}") from None
    with handle:
        reader = csv.DictReader(handle)
        header = list(reader.fieldnames or [])
        raw_col = _pick(header, args.column, ["raw", f"{metric}_raw"], "raw values", args.input)
        if raw_col is None:
            raise FitInputError(
                f"{args.input}: row 1: no column 'raw' or '{metric}_raw'; name it with --column"
            )
        rh_col = _pick(header, args.rh_column, ["rh_raw", "rh"], "RH", args.input)
        wt_col = _pick(
            header, args.water_temp_column, ["water_temp_raw", "water_temp"], "water temperature", args.input
        )
        out: TextIO = sys.stdout if args.out is None else args.out.open("w", newline="", encoding="utf-8")
        try:
            writer = csvcell.Writer(out, lineterminator="\r\n")  # no cell is a formula
            writer.writerow([*header, "value", "cal", "flags"])
            low, high = PHYSICAL_RANGE[cal.metric]
            for line, row in enumerate(reader, start=2):
                raw = parse_number(_cell(row.get(raw_col)), f"{args.input}: row {line}: column {raw_col!r}")
                rh = (
                    parse_number(_cell(row.get(rh_col)), f"{args.input}: row {line}: column {rh_col!r}")
                    if rh_col
                    else None
                )
                wt = (
                    parse_number(_cell(row.get(wt_col)), f"{args.input}: row {line}: column {wt_col!r}")
                    if wt_col
                    else None
                )
                cells = [csvcell.restore(_cell(row.get(h))) for h in header]  # written back safe
                if raw is None:
                    writer.writerow([*cells, "", "", ""])
                    continue
                result = cal.apply(raw, rh=rh, water_temp=wt)
                value = result.value
                flags = set(result.flags)
                if value is not None and not low <= value <= high:  # as the node: impossible values are null
                    value = None
                    flags.add(Flag.OUT_OF_RANGE)
                writer.writerow(
                    [*cells, "" if value is None else repr(value), cal.id, ",".join(sorted(flags))]
                )
        finally:
            if out is not sys.stdout:
                out.close()
    return 0
