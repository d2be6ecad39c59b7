"""What every sensor driver shares: the metrics, the sample, the protocol, the errors, the registry.

A driver turns bytes from one device into `Sample`s. It never averages, calibrates, logs-and-continues
or opens its own port: the sampler owns the policy (retry, back off, flag) and `hardware.ports`
opens devices, so a test can hand a driver a pty instead of a UART.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Protocol, Self, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from contract.clock import Clock
from contract.configfile import words_of
from contract.i18n import Texts
from contract.metrics import Metric


@dataclass(frozen=True, slots=True)
class Sample:
    """One decoded value from one sensor, before averaging and calibration."""

    metric: Metric
    raw: float
    taken_at: datetime


class SensorError(Exception):
    """Base for everything a driver raises. Made with `said`, it also carries its words as a message
    of `[sensor]` in contract/i18n (`key` and `params`), so that `minewatch-node check` says it in
    the reader's language; `str()` is the English, for logs."""

    key: str | None = None
    params: Mapping[str, Any] = {}  # replaced per instance by `said`, never mutated

    @classmethod
    def said(cls, key: str, **params: Any) -> Self:
        err = cls(words(_english(), key, params))
        err.key, err.params = key, params
        return err


@functools.cache
def _english() -> Texts:
    return Texts("en")


def words(t: Texts, key: str, params: Mapping[str, Any]) -> str:
    """A `[sensor]` message in `t`'s language; a parameter named `hint` is itself the key of a
    `[sensor]` message (what to check), rendered in the same language."""
    shown = dict(params)
    if "hint" in shown:
        shown["hint"] = t(f"sensor.{shown['hint']}")
    return t(f"sensor.{key}", **shown)


class FrameError(SensorError, ValueError):
    """Bad header, length or checksum: drop it and read again."""


class SensorSilent(SensorError, TimeoutError):
    """No bytes in time: back off and flag sensor_fault."""


class PortGone(SensorError, OSError):
    """The device vanished (USB adapter pulled): reopen with backoff."""


def _refused(kind: str, params: dict[str, Any]) -> PydanticCustomError:
    """A value refused in words of `[config]` (contract/i18n): pydantic's message is the English;
    `minewatch-node check --lang` words it again from the type and the parameters."""
    return PydanticCustomError(kind, "{text}", {**params, "text": words_of(kind, params)})


def i2c_address(*allowed: int) -> BeforeValidator:
    """An I2C address as TOML writes it (`0x76`) or as a datasheet and `i2cdetect` do, in quotes
    (`"0x76"`, `"76"` is not taken: hex needs its 0x); refused in plain words, in hex, when it is
    not one the part answers on."""

    def parse(value: Any) -> Any:
        number = value
        if isinstance(value, str):
            try:
                number = int(value.strip(), 0)
            except ValueError:
                raise _refused("i2c_address", {"value": repr(value), "example": "0x76"}) from None
        if isinstance(number, int) and not isinstance(number, bool) and allowed and number not in allowed:
            choices = [f"0x{a:02x}" for a in allowed]
            raise _refused("i2c_address_here", {"address": f"0x{number:02x}", "choices": choices})
        return number

    return BeforeValidator(parse)


class SensorOptions(BaseModel):
    """Keys every `[[sensors]]` table may carry; each driver subclasses it with a `type` Literal."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: str
    name: str | None = Field(
        default=None,
        pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$",
        description="Label in logs and status; defaults to the type, numbered when repeated.",
    )
    sample_interval_s: float = Field(default=1.0, gt=0, le=3600)
    calibration: list[str] = Field(
        default_factory=list,
        description="Calibration files (relative to the config file) or preset names, one per metric.",
    )
    metrics: list[Metric] | None = Field(
        default=None,
        min_length=1,
        description="Only these of the sensor's metrics are kept (default: all it reports); another "
        "sensor of the node can then report the others.",
    )

    path_keys: ClassVar[tuple[str, ...]] = ()
    """Keys holding a file path, taken relative to the config file's folder (node.config)."""

    def fit_to_window(self, interval_s: int) -> dict[str, Any]:
        """Keys to set once the node's averaging window is known (none here); ValueError starting
        with the key's name when these options cannot fit the window."""
        return {}


class DeviceOptions(SensorOptions):
    """Keys every driver of a real device takes, with defaults each driver sets for its part."""

    warm_up_s: float = Field(
        default=0.0, ge=0, le=600, description="After power-on or wake, readings are flagged warming_up."
    )
    stuck_after_s: float | None = Field(
        default=None,
        gt=0,
        description="Identical values for this long mean a stuck sensor (sensor_fault); none: never.",
    )


class SensorDriver(Protocol):
    """One physical (or simulated) sensor. `read` returns what it measured now or raises SensorError.

    `metrics` names what it reports, so a failed read can still mark those metrics null and faulty.
    A driver may also offer, as plain attributes the sampler reads with the helpers below:
    `is_warming_up` (bool), `raw_range` (RawRange), `stuck_after_s` (float | None) and
    `default_curves` (metric -> DefaultCurve). A driver whose device vanished (PortGone) opens it
    again on a later `read`; the sampler's backoff paces those attempts.
    """

    @property
    def metrics(self) -> tuple[Metric, ...]: ...

    def read(self) -> list[Sample]: ...

    def close(self) -> None: ...


RawRange = Mapping[Metric, tuple[float, float]]
"""Per metric, the raw values the part can physically report (inclusive)."""


@dataclass(frozen=True, slots=True)
class DefaultCurve:
    """A documented conversion a driver offers for a metric until a calibration is configured: the
    sampler applies it to the averaged raw value when the calibration returns no `cal` id."""

    cal: str
    apply: Callable[[float], float | None]  # None: raw outside the curve's range (out_of_range)


def is_warming_up(driver: object) -> bool:
    """True while a driver says it is within its warm-up (drivers without one never are)."""
    return bool(getattr(driver, "is_warming_up", False))


def raw_range(driver: object) -> Mapping[Metric, tuple[float, float]]:
    """The raw values the part can physically report; a sample outside is out_of_range."""
    ranges: Mapping[Metric, tuple[float, float]] = getattr(driver, "raw_range", {})
    return ranges


def stuck_after_s(driver: object) -> float | None:
    value = getattr(driver, "stuck_after_s", None)
    return None if value is None else float(value)


def default_curves(driver: object) -> Mapping[Metric, DefaultCurve]:
    curves: Mapping[Metric, DefaultCurve] = getattr(driver, "default_curves", {})
    return curves


class WarmUp:
    """Tracks the warm-up after power-on or wake with the injected clock."""

    def __init__(self, clock: Clock, seconds: float) -> None:
        self._clock, self._seconds = clock, seconds
        self._since = clock()

    def restart(self) -> None:
        self._since = self._clock()

    @property
    def is_active(self) -> bool:
        return (self._clock() - self._since).total_seconds() < self._seconds


OptionsT = TypeVar("OptionsT", bound=SensorOptions)


class DriverFactory(Protocol):
    """A driver class: built from its validated options and the clock; opens its own port via
    `hardware.ports` in `open` so that tests can call the constructor with a pty instead."""

    options: ClassVar[type[SensorOptions]]

    @classmethod
    def open(cls, opts: Any, clock: Clock) -> SensorDriver: ...


REGISTRY: dict[str, type[Any]] = {}
"""Sensor `type` -> driver class. Filled by `@register` as each driver's module is imported, which
`hardware.driver_class` does for the types a node.toml names (`hardware.DRIVERS` lists them all)."""


def register(options: type[SensorOptions]) -> Callable[[type[Any]], type[Any]]:
    """Class decorator: make a driver selectable by the `type` Literal of its options model."""
    type_field = options.model_fields["type"]
    literal_args: tuple[object, ...] = getattr(type_field.annotation, "__args__", ())
    if len(literal_args) != 1:
        raise TypeError(f"{options.__name__}.type must be a Literal with one value")
    type_name = str(literal_args[0])

    def decorate(cls: type[Any]) -> type[Any]:
        if type_name in REGISTRY:
            raise TypeError(f"sensor type {type_name!r} registered twice")
        cls.options = options
        REGISTRY[type_name] = cls
        return cls

    return decorate


def reported_metrics(opts: SensorOptions) -> tuple[Metric, ...] | None:
    """What a sensor configured with `opts` reports, known before any port opens: its driver's
    `metrics` when they are the same in every configuration, else the driver's `metrics_for(opts)`,
    narrowed to the `metrics` key when given. None when the driver cannot tell before it runs."""
    cls = REGISTRY.get(opts.type)
    fixed = getattr(cls, "metrics", None)
    metrics_for = getattr(cls, "metrics_for", None)
    if isinstance(fixed, tuple):
        reported: tuple[Metric, ...] | None = fixed
    else:
        reported = None if metrics_for is None else metrics_for(opts)
    if reported is None or opts.metrics is None:
        return reported
    return tuple(m for m in reported if m in opts.metrics)


def open_driver(opts: SensorOptions, clock: Clock) -> SensorDriver:
    """Build the driver for validated options (opens its port, if it has one)."""
    driver: SensorDriver = REGISTRY[opts.type].open(opts, clock)
    return driver
