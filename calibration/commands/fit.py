"""`minewatch-calibrate fit`: a calibration file from co-located sensor and reference data."""

from __future__ import annotations

import argparse
import tomllib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from calibration import files, stats, tomlwrite
from calibration.fit import FitInputError, Pairs, fit, pairs, period_s, read_table
from calibration.models import Model, coefficient_names
from calibration.plot import fit_plot
from contract.metrics import METRIC_UNITS, Metric

_DEFAULT_TYPE = {
    Metric.PM1_0: "pms5003",
    Metric.PM2_5: "pms5003",
    Metric.PM10: "pms5003",
    Metric.TURBIDITY: "turbidity-ads1115",
}


def add(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("fit", help="fit a calibration from co-location data")
    p.add_argument(
        "--input", required=True, type=Path, help="CSV with timestamp, sensor (and reference) columns"
    )
    p.add_argument("--reference", type=Path, help="a second CSV with the reference instrument's values")
    p.add_argument("--metric", required=True, choices=[m.value for m in Metric])
    p.add_argument("--model", default="linear", choices=["linear", "multilinear", "polynomial"])
    p.add_argument("--degree", type=int, default=2, help="polynomial degree (default 2)")
    p.add_argument("--sensor-column", default="sensor")
    p.add_argument("--reference-column", default="reference")
    p.add_argument("--rh-column", help="relative humidity column (needed by multilinear)")
    p.add_argument("--timestamp-column", default="timestamp")
    p.add_argument("--average", default="1h", help="averaging period: 1h (default), 24h, 10min …")
    p.add_argument("--out", required=True, type=Path, help="calibration file to write")
    p.add_argument("--plot", type=Path, help="also write a PNG: scatter before/after and time series")
    p.add_argument("--id", help="calibration id (default: <sensor>-<serial or metric>@<date>)")
    p.add_argument("--sensor-type", help="the node's [[sensors]] type this is for (default by metric)")
    p.add_argument("--serial", help="serial number or label of the sensor unit")
    p.add_argument("--site", help="where the co-location took place")
    p.add_argument("--reference-instrument", help="e.g. 'Teledyne T640 (FEM), station UB-4'")
    p.add_argument("--by", help="who did the co-location")
    p.add_argument("--valid-days", type=int, default=365, help="validity after the co-location (days)")
    p.set_defaults(func=run)


def read_pairs(args: argparse.Namespace) -> Pairs:
    if args.model == "polynomial" and not 1 <= args.degree <= 5:
        raise FitInputError(f"--degree {args.degree}: use 1 to 5 (2 or 3 is usually enough)")
    if args.valid_days < 1:
        raise FitInputError(f"--valid-days {args.valid_days}: must be at least 1")
    period = period_s(args.average)
    if args.model == "multilinear" and not args.rh_column:
        raise FitInputError("--model multilinear needs --rh-column (the RH column of the co-location data)")
    rh_col = [args.rh_column] if args.rh_column else []
    ts_col = args.timestamp_column
    if args.reference is None:
        table = read_table(args.input, [args.sensor_column, args.reference_column, *rh_col], ts_col)
        rh = (table, args.rh_column) if args.rh_column else None
        return pairs(table, args.sensor_column, table, args.reference_column, period, rh)
    sensor_head = read_table(args.input, [], ts_col).header
    in_sensor = bool(args.rh_column) and args.rh_column in sensor_head
    sensor_t = read_table(args.input, [args.sensor_column, *(rh_col if in_sensor else [])], ts_col)
    ref_t = read_table(args.reference, [args.reference_column, *([] if in_sensor else rh_col)], ts_col)
    rh = ((sensor_t if in_sensor else ref_t), args.rh_column) if args.rh_column else None
    return pairs(sensor_t, args.sensor_column, ref_t, args.reference_column, period, rh)


def _coefficients(model: Model) -> dict[str, Any]:
    return {name: getattr(model, name) for name in coefficient_names(type(model))}


def build_document(args: argparse.Namespace, data: Pairs, model: Model, metric: Metric) -> dict[str, Any]:
    first, last = data.starts[0], data.starts[-1] + timedelta(seconds=period_s(args.average))
    sensor_type = args.sensor_type or _DEFAULT_TYPE.get(metric)
    if sensor_type is None:
        raise FitInputError(
            f"--sensor-type: say which [[sensors]] type this {metric.value} calibration is for"
        )
    cal_id = args.id or f"{sensor_type}-{args.serial or metric.value}@{first.date().isoformat()}"
    doc: dict[str, Any] = {
        "id": cal_id,
        "metric": metric.value,
        "model": args.model,
        "description": f"{args.model} fit against a reference, {args.average} averages",
        "valid_from": first,
        "valid_to": last + timedelta(days=args.valid_days),
        # the co-location saw RH in this range; its mean is the least-wrong guess when RH is missing
        "rh_fallback": round(sum(data.rh) / len(data.rh), 1)
        if data.rh and args.model == "multilinear"
        else None,
        "sensor": {"type": sensor_type, "serial": args.serial},
        "coefficients": {k: list(v) if isinstance(v, tuple) else v for k, v in _coefficients(model).items()},
        "range": {"min": min(data.sensor), "max": max(data.sensor), "outside": "extrapolate"},
        "provenance": {
            "method": f"co-location, ordinary least squares ({args.model}), minewatch-calibrate fit",
            "site": args.site,
            "colocated_from": first,
            "colocated_to": last,
            "reference": args.reference_instrument,
            "by": args.by,
            "created": datetime.now(UTC).replace(microsecond=0),
            "average": args.average,
            "n": len(data.sensor),
        },
    }
    return doc


def run(args: argparse.Namespace) -> int:
    metric = Metric(args.metric)
    data = read_pairs(args)
    model = fit(
        args.model,
        data,
        sensor_column=args.sensor_column,
        rh_column=args.rh_column or "rh",
        degree=args.degree,
    )
    doc = build_document(args, data, model, metric)
    draft = files.parse(doc, args.out)
    rh: list[float | None] = list(data.rh) if data.rh else [None] * len(data.sensor)
    # the range is the data's own, so every pair has a value
    corrected = [float(draft.apply(x, rh=h).value or 0.0) for x, h in zip(data.sensor, rh, strict=True)]
    before = stats.compute(data.sensor, data.reference)
    after = stats.compute(corrected, data.reference)
    doc["provenance"]["before"] = before.model_dump(exclude_none=True)
    doc["provenance"]["after"] = after.model_dump(exclude_none=True)
    text = tomlwrite.dumps(doc)
    files.parse(tomllib.loads(text), args.out)  # what we write must load back
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"{draft.id}: {draft.model.formula()}   (x = raw {metric.value}, y = calibrated)")
    print(f"{len(data.sensor)} periods of {args.average} from {data.source}")
    print(stats.table(before, after, pm=metric is Metric.PM2_5, average=args.average))
    print(f"wrote {args.out}")
    if args.plot:
        unit = METRIC_UNITS[metric]
        fit_plot(args.plot, data.starts, data.sensor, data.reference, corrected, title=draft.id, unit=unit)
        print(f"wrote {args.plot}")
    return 0
