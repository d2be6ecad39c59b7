"""AQDx 3.0, tabular CSV (Colorado CDPHE's Air Quality Data eXchange, cdphe-atops/aqdx-documentation:
`docs/standard-format/field-dictionary.md` and `tabular-format.md`). One row per reading and
metric; every column of the field dictionary, in its order, even when empty; `datetime` is the
start of the averaging window with an explicit offset (never `Z`). Codes: AQS parameter and unit
codes (`docs/assets/parameters.csv`, `units.csv`), measurement technology codes from the AQDx
taxonomy (`docs/assets/measurement_technology_codes.yaml`: a PMS5003 is `DA-00-SCls`, like the
PurpleAir in its examples), validity and qualifiers from our flags (gateway/exports/quality.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from contract.metrics import Metric
from gateway.exports import quality
from gateway.exports.cells import fixed, seconds, window
from gateway.exports.registry import Context, register
from gateway.timerange import QueryArgumentError


@dataclass(frozen=True, slots=True)
class Parameter:
    code: str  # AQS parameter code
    unit: str  # AQS unit code
    technology: str  # AQDx measurement_technology_code


# PM2.5: 88502 "Acceptable PM2.5 AQI & Speciation Mass", the code for non-FRM/FEM PM2.5
# (88101 is for designated reference and equivalent methods). Units: 105 µg/m³ (LC), 017 °C,
# 019 % RH, 016 millibars (= hPa).
PARAMETERS: dict[Metric, Parameter] = {
    Metric.PM1_0: Parameter("87111", "105", "DA-00-SCls"),
    Metric.PM2_5: Parameter("88502", "105", "DA-00-SCls"),
    Metric.PM10: Parameter("85101", "105", "DA-00-SCls"),
    Metric.AIR_TEMP: Parameter("62101", "017", "DA-00-MTtm"),
    Metric.RH: Parameter("62201", "019", "DA-00-MTrh"),
    Metric.PRESSURE: Parameter("64101", "016", "DA-00-MTpr"),
}

MEAN = 1  # aggregation_code: each reading is the mean of its window's samples
CONSUMER_GRADE = 3  # instrument_classification
RAW_REVIEW = 0  # review_level_code: no human has reviewed it when it is exported
NO_CALIBRATION, PROVISIONAL = 0, 1  # calibration_code: a project calibration is "provisional"


@register
class Aqdx:
    name = "aqdx"
    title = "AQDx 3.0 (tabular CSV)"
    columns: tuple[str, ...] = (
        "datetime",
        "parameter_code",
        "parameter_value",
        "unit_code",
        "method_code",
        "duration",
        "aggregation_code",
        "latitude",
        "longitude",
        "elevation",
        "data_steward_name",
        "device_id",
        "measurement_technology_code",
        "instrument_classification",
        "dataset_id",
        "validity_code",
        "calibration_code",
        "review_level_code",
        "detection_limit",
        "qualifier_codes",
    )
    metrics: tuple[Metric, ...] = tuple(PARAMETERS)

    def check(self, ctx: Context, site: str, nodes: list[str]) -> None:
        if ctx.exports.data_steward_name is None:
            raise QueryArgumentError(ctx.texts("exchange_cli.steward_missing", config=ctx.config))
        placed = {n for (s, n), place in ctx.places.items() if s == site and place.lat is not None}
        missing = [n for n in nodes if n not in placed]
        if missing or not placed:
            raise QueryArgumentError(
                ctx.texts(
                    "exchange_cli.no_coordinates",
                    config=ctx.config,
                    site=site,
                    nodes=", ".join(missing) or ctx.texts("exchange_cli.none_listed"),
                    format=self.title,
                )
            )

    def rows(
        self, reading: dict[str, Any], metric: Metric, duration_s: int, ctx: Context
    ) -> Iterator[list[Any]]:
        place = ctx.place(reading["site"], reading["node"])
        if place.lat is None:
            return  # a node without coordinates (export of a whole site): `check` has said so
        param = PARAMETERS[metric]
        value = reading[metric.value]
        flags = quality.parse_flags(reading["flags"])
        q = quality.assess(metric, value, flags, bool(reading["maintenance"]))
        qualifiers = list(q.qualifiers)
        calibrated = bool(reading[f"{metric.value}_cal"])
        if calibrated and value is not None:
            qualifiers.append("CD")  # AQDx supplemental: corrected data (a calibration model applied)
        start, _ = window(reading, duration_s)
        elevation = place.agency.elevation_m if place.agency else None
        yield [
            start.astimezone(ctx.tz).isoformat(timespec="milliseconds" if start.microsecond else "seconds"),
            param.code,
            fixed(value, 5),
            param.unit,
            "",  # method_code: blank for a sensor without an EPA designation
            seconds(duration_s),
            MEAN,
            fixed(place.lat, 5),
            fixed(place.lon, 5),
            fixed(elevation, 2),
            ctx.exports.data_steward_name,
            f"{reading['site']}-{reading['node']}",
            param.technology,
            CONSUMER_GRADE,
            ctx.dataset_id,
            q.validity,
            PROVISIONAL if calibrated else NO_CALIBRATION,
            RAW_REVIEW,
            "",  # detection_limit: not known for these sensors
            " ".join(qualifiers),
        ]
