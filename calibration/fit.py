"""Fitting a calibration from co-location data: read paired sensor/reference values, average them to
the chosen period, solve least squares, and refuse degenerate input naming the file, row and column.

Input is either one CSV with `timestamp`, sensor, reference and optional RH columns, or two CSVs (the
sensor's and the reference's, each with `timestamp`) aligned by time. Either way the values are
averaged into periods aligned to the epoch (1 h periods start on the hour, 24 h periods at 00:00 UTC)
and a period counts when it has both a sensor and a reference value (and RH, when the model uses it).
"""

from __future__ import annotations

import csv
import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from calibration.models import Linear, Model, Multilinear, PiecewiseLinear, Polynomial


class FitInputError(ValueError):
    """Input that cannot be fitted; the message names the file, the row and the column."""


_PERIOD_RE = re.compile(r"^(\d+)(s|min|h|d)$")
_UNIT_S = {"s": 1, "min": 60, "h": 3600, "d": 86400}


def period_s(text: str) -> int:
    """'1h' -> 3600, '24h' -> 86400, '10min' -> 600."""
    match = _PERIOD_RE.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise FitInputError(f"--average {text!r}: use a period like 1h, 24h or 10min")
    return int(match.group(1)) * _UNIT_S[match.group(2)]


def parse_time(text: str, where: str) -> datetime:
    try:
        ts = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise FitInputError(f"{where}: {text!r} is not an ISO 8601 timestamp") from None
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def parse_number(text: str, where: str) -> float | None:
    """A finite number, or None for an empty cell (a missing value, not an error)."""
    cell = text.strip()
    if not cell:
        return None
    try:
        value = float(cell)
    except ValueError:
        raise FitInputError(f"{where}: {cell!r} is not a number") from None
    if not math.isfinite(value):
        raise FitInputError(f"{where}: {cell!r} is not a finite number")
    return value


@dataclass(frozen=True, slots=True)
class Table:
    """Columns of numbers by row, as read: `rows[i]` is the file's row `lines[i]`."""

    path: Path
    header: list[str]
    timestamps: list[datetime]
    lines: list[int]
    columns: dict[str, list[float | None]]


def read_table(path: Path, wanted: Sequence[str], timestamp: str = "timestamp") -> Table:
    """Read `timestamp` and the `wanted` columns; every cell is checked up front."""
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise FitInputError(f"{path}: cannot open: {exc.strerror}") from None
    with handle:
        reader = csv.reader(handle)
        header = [h.strip() for h in next(reader, [])]
        for name in (timestamp, *wanted):
            if name not in header:
                raise FitInputError(f"{path}: row 1: no column {name!r} (the header has {header})")
        index = {name: header.index(name) for name in (timestamp, *wanted)}
        timestamps: list[datetime] = []
        lines: list[int] = []
        columns: dict[str, list[float | None]] = {name: [] for name in wanted}
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue  # blank line
            if len(row) < len(header):
                raise FitInputError(f"{path}: row {line}: {len(row)} cells, the header has {len(header)}")
            timestamps.append(parse_time(row[index[timestamp]], f"{path}: row {line}: column {timestamp!r}"))
            lines.append(line)
            for name in wanted:
                where = f"{path}: row {line}: column {name!r}"
                columns[name].append(parse_number(row[index[name]], where))
    return Table(path, header, timestamps, lines, columns)


def _bucket_means(table: Table, column: str, period: int) -> dict[int, float]:
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for ts, value in zip(table.timestamps, table.columns[column], strict=True):
        if value is None:
            continue
        bucket = math.floor(ts.timestamp() / period) * period
        sums[bucket] = sums.get(bucket, 0.0) + value
        counts[bucket] = counts.get(bucket, 0) + 1
    return {b: sums[b] / counts[b] for b in sums}


@dataclass(frozen=True, slots=True)
class Pairs:
    """Averaged co-location data, one entry per period (its start)."""

    starts: list[datetime]
    sensor: list[float]
    reference: list[float]
    rh: list[float] | None
    source: str


def _span(table: Table) -> str:
    if not table.timestamps:
        return "no rows"
    return f"{min(table.timestamps).isoformat()} … {max(table.timestamps).isoformat()}"


def pairs(
    sensor_table: Table,
    sensor_column: str,
    reference_table: Table,
    reference_column: str,
    period: int,
    rh: tuple[Table, str] | None = None,
) -> Pairs:
    sensor = _bucket_means(sensor_table, sensor_column, period)
    reference = _bucket_means(reference_table, reference_column, period)
    rh_means = _bucket_means(rh[0], rh[1], period) if rh else None
    for table, column, means in (
        (sensor_table, sensor_column, sensor),
        (reference_table, reference_column, reference),
    ):
        if not means:
            raise FitInputError(f"{table.path}: column {column!r}: no values at all")
    common = sorted(set(sensor) & set(reference) & (set(rh_means) if rh_means is not None else set(sensor)))
    if not common:
        if sensor_table.path != reference_table.path:
            raise FitInputError(
                f"{sensor_table.path} ({_span(sensor_table)}) and {reference_table.path} "
                f"({_span(reference_table)}) share no averaging period: do the timestamps overlap, "
                "and are both in UTC (or with an offset)?"
            )
        missing = f" and {rh[1]!r}" if rh else ""
        raise FitInputError(
            f"{sensor_table.path}: no averaging period has values in both {sensor_column!r} and "
            f"{reference_column!r}{missing}"
        )
    source = str(sensor_table.path)
    if reference_table.path != sensor_table.path:
        source += f" + {reference_table.path}"
    return Pairs(
        starts=[datetime.fromtimestamp(b, UTC) for b in common],
        sensor=[sensor[b] for b in common],
        reference=[reference[b] for b in common],
        rh=[rh_means[b] for b in common] if rh_means is not None else None,
        source=source,
    )


def min_pairs(kind: str, degree: int = 2) -> int:
    """Pairs needed: the number of coefficients plus two, so at least two degrees of freedom remain
    to judge the fit (with exactly as many pairs as coefficients any data fits perfectly)."""
    params = {"linear": 2, "multilinear": 3, "polynomial": degree + 1}[kind]
    return params + 2


def _design(kind: str, x: np.ndarray, rh: np.ndarray | None, degree: int) -> np.ndarray:
    if kind == "linear":
        return np.column_stack([x, np.ones_like(x)])
    if kind == "multilinear":
        assert rh is not None
        return np.column_stack([x, rh, np.ones_like(x)])
    return np.column_stack([x**p for p in range(degree + 1)])


def fit(
    kind: str,
    data: Pairs,
    *,
    sensor_column: str = "sensor",
    rh_column: str = "rh",
    degree: int = 2,
) -> Model:
    """Least squares for reference ≈ model(sensor[, RH]); refuses too few pairs and singular fits."""
    need = min_pairs(kind, degree)
    if len(data.sensor) < need:
        raise FitInputError(
            f"{data.source}: only {len(data.sensor)} averaging period(s) with paired values; a {kind} fit "
            f"needs at least {need}: co-locate longer or average over a shorter period"
        )
    x = np.asarray(data.sensor, dtype=float)
    y = np.asarray(data.reference, dtype=float)
    rh = np.asarray(data.rh, dtype=float) if data.rh is not None else None
    if kind == "multilinear" and rh is None:
        raise FitInputError("the multilinear model needs an RH column: pass --rh-column")
    if float(np.ptp(x)) == 0.0:
        raise FitInputError(
            f"{data.source}: column {sensor_column!r}: singular fit, the sensor reads {x[0]:g} in every "
            "period; the fit needs readings that vary"
        )
    if rh is not None and kind == "multilinear" and float(np.ptp(rh)) == 0.0:
        raise FitInputError(
            f"{data.source}: column {rh_column!r}: singular fit, RH is {rh[0]:g} in every period; use "
            "--model linear, or co-locate through drier and wetter days"
        )
    design = _design(kind, x, rh, degree)
    # scale columns before the rank test so that µg/m³, % and x² columns are judged alike
    norms = np.linalg.norm(design, axis=0)
    if int(np.linalg.matrix_rank(design / norms)) < design.shape[1]:
        names = {"multilinear": f"{sensor_column!r} and {rh_column!r}"}.get(kind, f"{sensor_column!r}")
        raise FitInputError(
            f"{data.source}: columns {names}: singular fit, the columns are collinear (one is a "
            "multiple of the other); the fit cannot tell their effects apart"
        )
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    values = [float(c) for c in coef]
    if kind == "linear":
        return Linear(slope=values[0], intercept=values[1])
    if kind == "multilinear":
        return Multilinear(a=values[0], b=values[1], c=values[2])
    return Polynomial(c=tuple(values))


def curve_from_standards(raw: Sequence[float], ntu: Sequence[float], where: str) -> PiecewiseLinear:
    """A turbidity curve through the mean raw reading of each standard solution. The readings must
    rise or fall steadily with NTU; otherwise the probe, its wiring or a standard is wrong."""
    by_standard: dict[float, list[float]] = {}
    for r, n in zip(raw, ntu, strict=True):
        by_standard.setdefault(n, []).append(r)
    if len(by_standard) < 2:
        raise FitInputError(f"{where}: readings of at least two different standards are needed")
    standards = sorted(by_standard)
    means = [sum(by_standard[n]) / len(by_standard[n]) for n in standards]
    steps = [b - a for a, b in itertools.pairwise(means)]
    if not (all(s > 0 for s in steps) or all(s < 0 for s in steps)):
        detail = ", ".join(f"{n:g} NTU → {m:.4g}" for n, m in zip(standards, means, strict=True))
        raise FitInputError(
            f"{where}: the curve is not monotonic (mean reading per standard: {detail}); re-read the "
            "standards that break the order, and check the probe is clean and shielded from light"
        )
    points = sorted(zip(means, standards, strict=True))
    return PiecewiseLinear(points=tuple((float(x), float(y)) for x, y in points))
