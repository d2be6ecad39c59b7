"""Calibration files: one TOML file per calibration, validated with pydantic, and the `Calibration`
they become.

A file says what it calibrates (`metric`, `sensor`), how (`model` and `coefficients`, the calibrated
input `range`, the RH to assume when the node has none, optional water temperature compensation),
when it may be used (`valid_from`/`valid_to`) and where it came from (`provenance`). Its `id` travels
in every reading's `cal`, so anyone holding a stored `raw` and this file can recompute `value`
(`minewatch-calibrate apply`). Errors name the file and the key, like every config here.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    create_model,
    model_validator,
)

from calibration.models import MODELS, Model, NeedsRh
from contract.configfile import ConfigError, describe, read_toml
from contract.flags import Flag
from contract.metrics import Metric
from contract.wire import CalId

VALUE_DECIMALS = 4
"""The node rounds calibrated values to this many decimals (node/sampler.py); `apply` does the same so
recomputed values equal stored ones exactly."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SensorRef(_Section):
    """Which sensors this calibration is for. `type` is the node's `[[sensors]] type` (one, or a list
    for presets that fit several drivers); `serial` and `label` identify the physical unit."""

    type: str | list[str]
    serial: str | None = None
    label: str | None = None

    @property
    def types(self) -> tuple[str, ...]:
        return (self.type,) if isinstance(self.type, str) else tuple(self.type)


class InputRange(_Section):
    """The raw inputs the calibration was derived from. Outside it the reading is flagged
    `out_of_range`; `outside` says whether the curve is extended (`extrapolate`), the input held at
    the nearest end (`clamp`), or no value given at all (`null`, for a curve defined only on its
    range, like a manufacturer's parabola that turns back beyond it)."""

    min: float
    max: float
    outside: Literal["extrapolate", "clamp", "null"] = "extrapolate"

    @model_validator(mode="after")
    def _ordered(self) -> InputRange:
        if not self.min < self.max:
            raise ValueError(f"min ({self.min:g}) must be below max ({self.max:g})")
        return self


class WaterTempCompensation(_Section):
    """x_ref = x − coefficient_per_c·(water_temp − reference_c): the raw reading the probe would give
    at the reference temperature (optical turbidity probes drift with LED and water temperature)."""

    coefficient_per_c: float
    reference_c: float = 25.0


class Stats(_Section):
    """US EPA sensor performance statistics of sensor vs reference (calibration.stats)."""

    n: int = Field(ge=0)
    r2: float | None = None
    slope: float | None = None
    intercept: float | None = None
    rmse: float | None = None
    nrmse_pct: float | None = None


class Provenance(_Section):
    """How the calibration was made, so a reader can judge it without asking anyone."""

    method: str = Field(description="e.g. 'co-location, least squares' or 'manufacturer curve'")
    source: str | None = Field(default=None, description="publication or document, for presets")
    site: str | None = None
    colocated_from: AwareDatetime | None = None
    colocated_to: AwareDatetime | None = None
    reference: str | None = Field(default=None, description="reference instrument or standards used")
    by: str | None = None
    created: AwareDatetime | None = None
    average: str | None = None
    n: int | None = Field(default=None, ge=0)
    before: Stats | None = None
    after: Stats | None = None
    notes: str | None = None


class _FileBase(_Section):
    id: CalId
    metric: Metric
    description: str | None = None
    sensor: SensorRef
    valid_from: AwareDatetime
    valid_to: AwareDatetime | None = None
    range: InputRange | None = None
    rh_fallback: float | None = Field(
        default=None, ge=0, le=100, description="RH (%) assumed when the node measured none"
    )
    water_temp: WaterTempCompensation | None = None
    provenance: Provenance

    @model_validator(mode="after")
    def _consistent(self) -> _FileBase:
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("valid_to must be after valid_from")
        model: Model = self.coefficients  # type: ignore[attr-defined]
        if model.needs_rh and self.rh_fallback is None:
            raise ValueError(
                "rh_fallback: required for a model that uses RH (the RH to assume when the node has "
                "no humidity sensor or it failed; the reading is then flagged cal_fallback)"
            )
        return self


def _file_models() -> tuple[type[_FileBase], ...]:
    out = []
    for kind, cls in MODELS.items():
        # a model without coefficients (a published formula) needs no [coefficients] table
        default = ... if any(f.init for f in fields(cls)) else cls()
        out.append(
            create_model(
                f"{cls.__name__}File",
                __base__=_FileBase,
                model=(Literal[kind], ...),  # type: ignore[arg-type]  # a runtime Literal
                coefficients=(cls, default),
            )
        )
    return tuple(out)


_FILE_MODELS = _file_models()
CalibrationFile = Annotated[Union[_FILE_MODELS], Field(discriminator="model")]  # type: ignore[valid-type]  # noqa: UP007


class _Wrapper(BaseModel):
    file: CalibrationFile


@dataclass(frozen=True, slots=True)
class Result:
    value: float | None  # None: outside a range whose `outside` is "null"
    flags: frozenset[Flag]


@dataclass(frozen=True, slots=True)
class Calibration:
    """A validated calibration, ready to apply. `apply` is pure: same inputs, same value, anywhere."""

    id: str
    metric: Metric
    sensor: SensorRef
    model: Model
    valid_from: datetime
    valid_to: datetime | None
    range: InputRange | None
    rh_fallback: float | None
    water_temp: WaterTempCompensation | None
    provenance: Provenance
    description: str | None
    path: Path | None

    def is_valid_at(self, ts: datetime) -> bool:
        return self.valid_from <= ts and (self.valid_to is None or ts < self.valid_to)

    def apply(self, raw: float, rh: float | None = None, water_temp: float | None = None) -> Result:
        """Calibrated value of one averaged raw reading, rounded as the node stores it, with the flags
        the reading must carry: `out_of_range` outside the calibrated range, `cal_fallback` when RH or
        water temperature was needed and missing (the documented fallback was used instead)."""
        flags: set[Flag] = set()
        x = raw
        if self.water_temp is not None:
            if water_temp is None:
                flags.add(Flag.CAL_FALLBACK)  # uncompensated: better than no value
            else:
                comp = self.water_temp
                x = x - comp.coefficient_per_c * (water_temp - comp.reference_c)
        if self.range is not None and not self.range.min <= x <= self.range.max:
            flags.add(Flag.OUT_OF_RANGE)
            if self.range.outside == "null":
                return Result(None, frozenset(flags))
            if self.range.outside == "clamp":
                x = min(max(x, self.range.min), self.range.max)
        try:
            value = self.model.apply(x, rh)
        except NeedsRh:
            flags.add(Flag.CAL_FALLBACK)
            value = self.model.apply(x, self.rh_fallback)
        return Result(round(value, VALUE_DECIMALS), frozenset(flags))


def from_model(doc: _FileBase, path: Path | None = None) -> Calibration:
    return Calibration(
        id=doc.id,
        metric=doc.metric,
        sensor=doc.sensor,
        model=doc.coefficients,  # type: ignore[attr-defined]
        valid_from=doc.valid_from.astimezone(UTC),
        valid_to=None if doc.valid_to is None else doc.valid_to.astimezone(UTC),
        range=doc.range,
        rh_fallback=doc.rh_fallback,
        water_temp=doc.water_temp,
        provenance=doc.provenance,
        description=doc.description,
        path=path,
    )


def parse(data: dict[str, Any], where: Path | str) -> Calibration:
    """Validate a calibration document (already parsed TOML); errors name `where` and the key."""
    kind = data.get("model")
    if not isinstance(kind, str) or kind not in MODELS:
        raise ConfigError(f"{where}: model: {kind!r} is not a calibration model; use one of {sorted(MODELS)}")
    try:
        doc = _Wrapper.model_validate({"file": data}).file
    except ValidationError as exc:
        hide = ("file", *MODELS)
        raise ConfigError(describe(where, exc, hide)) from exc
    return from_model(doc, Path(where))


def load(path: Path | str) -> Calibration:
    path = Path(path)
    return parse(read_toml(path), path)
