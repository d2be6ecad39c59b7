"""Calibration models: each is a frozen dataclass of coefficients with one pure `apply(x, rh)`.

A model knows only arithmetic. Which input range was calibrated, what to do without RH, water
temperature compensation, validity dates and provenance belong to the calibration file
(`calibration.files`), so that the same few formulas serve every sensor. Each class is registered by
the `model` key a calibration file names it with; pydantic validates the coefficients straight into
the dataclass, so a misspelt coefficient is refused with its key (`coefficients.slope`).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol, TypeVar

from pydantic import ConfigDict, with_config


class Model(Protocol):
    """What the calibration wrapper needs from a model."""

    kind: ClassVar[str]
    needs_rh: ClassVar[bool]

    def apply(self, x: float, rh: float | None = None) -> float: ...

    def formula(self) -> str: ...


MODELS: dict[str, type[Any]] = {}
"""`model` key in a calibration file -> model class."""

T = TypeVar("T")


def register(kind: str) -> Callable[[type[T]], type[T]]:
    def decorate(cls: type[T]) -> type[T]:
        if kind in MODELS:
            raise TypeError(f"calibration model {kind!r} registered twice")
        cls.kind = kind  # type: ignore[attr-defined]  # declared as a ClassVar by each model
        MODELS[kind] = cls
        return cls

    return decorate


def coefficient_names(cls: type[Any]) -> list[str]:
    return [f.name for f in fields(cls)]


class NeedsRh(ValueError):
    """The model needs relative humidity and none was given; the caller decides the fallback."""


def _num(x: float) -> str:
    return f"{x:g}"


def _signed(x: float) -> str:
    return f"− {_num(-x)}" if x < 0 else f"+ {_num(x)}"


@register("linear")
@with_config(ConfigDict(extra="forbid", strict=False))
@dataclass(frozen=True, slots=True)
class Linear:
    """y = slope·x + intercept."""

    slope: float
    intercept: float = 0.0
    kind: ClassVar[str]
    needs_rh: ClassVar[bool] = False

    def apply(self, x: float, rh: float | None = None) -> float:
        return self.slope * x + self.intercept

    def formula(self) -> str:
        return f"y = {_num(self.slope)}·x {_signed(self.intercept)}"


@register("multilinear")
@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class Multilinear:
    """y = a·x + b·RH + c: the form of the US EPA correction for optical PM sensors, where humidity
    swells particles and makes the sensor read high."""

    a: float
    b: float
    c: float
    kind: ClassVar[str]
    needs_rh: ClassVar[bool] = True

    def apply(self, x: float, rh: float | None = None) -> float:
        if rh is None:
            raise NeedsRh("this model needs relative humidity")
        return self.a * x + self.b * rh + self.c

    def formula(self) -> str:
        return f"y = {_num(self.a)}·x {_signed(self.b)}·RH {_signed(self.c)}"


@register("polynomial")
@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class Polynomial:
    """y = c[0] + c[1]·x + c[2]·x² + …, coefficients in ascending powers of x."""

    c: tuple[float, ...]
    kind: ClassVar[str]
    needs_rh: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if not self.c:
            raise ValueError("c needs at least one coefficient")

    def apply(self, x: float, rh: float | None = None) -> float:
        y = 0.0
        for coefficient in reversed(self.c):  # Horner: fewer rounding steps than summing powers
            y = y * x + coefficient
        return y

    def formula(self) -> str:
        out = f"y = {_num(self.c[0])}"
        for power, coefficient in enumerate(self.c[1:], start=1):
            out += f" {_signed(coefficient)}·x" + ("" if power == 1 else f"^{power}")
        return out


@register("piecewise-linear")
@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class PiecewiseLinear:
    """Straight lines between measured points (x, y), x strictly increasing; beyond the ends the end
    segments are extended. Turbidity curves from standard solutions are tables like this."""

    points: tuple[tuple[float, float], ...]
    kind: ClassVar[str]
    needs_rh: ClassVar[bool] = False
    _xs: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.points) < 2:
            raise ValueError("points needs at least two [x, y] pairs")
        xs = tuple(x for x, _ in self.points)
        for i in range(1, len(xs)):
            if xs[i] <= xs[i - 1]:
                raise ValueError(f"points[{i}]: x = {xs[i]:g} must be greater than the x before it")
        object.__setattr__(self, "_xs", xs)

    def apply(self, x: float, rh: float | None = None) -> float:
        i = bisect.bisect_right(self._xs, x)
        i = min(max(i, 1), len(self.points) - 1)  # end segments extend beyond the table
        (x0, y0), (x1, y1) = self.points[i - 1], self.points[i]
        return y0 + (y1 - y0) * (x - x0) / (x1 - x0)

    def formula(self) -> str:
        table = ", ".join(f"({_num(x)} → {_num(y)})" for x, y in self.points)
        return f"y = straight lines through {table}"


@register("epa-2021-extended")
@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True, slots=True)
class EpaExtended:
    """The US EPA's extension of the US-wide PurpleAir correction to smoke concentrations, as used on
    the AirNow Fire and Smoke Map since October 2021 (see docs/calibration.md for the source).

    x is PM2.5 CF=1 in µg/m³. Below 30 it is Barkjohn et al. 2021; from 50 to 210 the slope is 0.786;
    from 260 a quadratic without RH; between those, linear blends of the neighbouring pieces, so the
    curve is continuous at 30, 50, 210 and 260. It has no free coefficients: the numbers are the
    published ones.
    """

    kind: ClassVar[str]
    needs_rh: ClassVar[bool] = True

    def apply(self, x: float, rh: float | None = None) -> float:
        if x >= 260:
            return 2.966 + 0.69 * x + 8.84e-4 * x * x
        if rh is None:
            raise NeedsRh("this model needs relative humidity below 260 µg/m³")
        if x < 30:
            return 0.524 * x - 0.0862 * rh + 5.75
        if x < 50:
            w = x / 20 - 1.5
            return (0.786 * w + 0.524 * (1 - w)) * x - 0.0862 * rh + 5.75
        if x < 210:
            return 0.786 * x - 0.0862 * rh + 5.75
        w = x / 50 - 4.2
        return (
            (0.69 * w + 0.786 * (1 - w)) * x
            - 0.0862 * rh * (1 - w)
            + 2.966 * w
            + 5.75 * (1 - w)
            + 8.84e-4 * x * x * w
        )

    def formula(self) -> str:
        return (
            "x < 30: y = 0.524·x − 0.0862·RH + 5.75; "
            "30 ≤ x < 50: y = [0.786·w + 0.524·(1 − w)]·x − 0.0862·RH + 5.75, w = x/20 − 3/2; "
            "50 ≤ x < 210: y = 0.786·x − 0.0862·RH + 5.75; "
            "210 ≤ x < 260: y = [0.69·w + 0.786·(1 − w)]·x − 0.0862·RH·(1 − w) + 2.966·w + 5.75·(1 − w) "
            "+ 8.84·10⁻⁴·x²·w, w = x/50 − 21/5; "
            "x ≥ 260: y = 2.966 + 0.69·x + 8.84·10⁻⁴·x²"
        )
