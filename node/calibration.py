"""The calibration a node applies: built from the `calibration` keys of its `[[sensors]]` tables and
called by the sampler once per metric per window (node/sampler.py's `Calibrate`).

Checked at start-up, before any port opens: each file must parse, be for a metric the sensor reports
(else it would correct whichever sensor does) and for the sensor's `type`, be valid now, and no
metric may have two calibrations (the node sends one value per metric). A calibration that expires
while the node runs is still applied — the value stays in calibrated units — but every reading it
touches carries `cal_expired`, and the node logs it once, so nothing expired is used silently. RH
and water temperature come from the same window.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from contract.clock import Clock
from contract.configfile import ConfigError
from contract.flags import Flag
from contract.metrics import Metric
from hardware.base import SensorOptions, reported_metrics

if TYPE_CHECKING:
    from calibration.files import Calibration

log = logging.getLogger(__name__)

RAW_DECIMALS = 4
"""The sampler stores each raw mean rounded to this many decimals (node/sampler.py). Inputs taken from
the window are rounded the same way, so that `minewatch-calibrate apply` on the stored `rh_raw`
reproduces `value` exactly, not merely to within rounding."""


def _as_stored(mean: float | None) -> float | None:
    return None if mean is None else round(mean, RAW_DECIMALS)


def _load_sensor_calibrations(sensors: Sequence[SensorOptions]) -> dict[Metric, tuple[str, Calibration]]:
    """Metric -> (its config key, e.g. `sensors[0].calibration[1]`, and the calibration)."""
    by_metric: dict[Metric, tuple[str, Calibration]] = {}
    if not any(opts.calibration for opts in sensors):
        return by_metric  # the calibration package (its file models) stays unloaded: a Pi's memory
    from calibration import presets
    from calibration.files import load

    for i, opts in enumerate(sensors):
        reported = reported_metrics(opts)
        for j, ref in enumerate(opts.calibration):
            where = f"sensors[{i}].calibration[{j}]"
            try:
                cal = load(presets.resolve(ref))
            except ConfigError as exc:
                hint = "" if presets.path(ref) else f" (presets: {', '.join(presets.names())})"
                raise ConfigError(f"{where}: {exc}{hint}") from exc
            if opts.type not in cal.sensor.types:
                raise ConfigError(
                    f"{where}: {cal.path}: is for sensor type {' or '.join(cal.sensor.types)}, "
                    f"not {opts.type!r}"
                )
            # Calibrations are looked up by metric, and each metric has one sensor (node.config):
            # one for a metric its sensor does not report would correct another sensor's values.
            if reported is not None and cal.metric not in reported:
                kept = " with its `metrics` key" if opts.metrics is not None else ""
                raise ConfigError(
                    f"{where}: {cal.path}: metric: calibrates {cal.metric.value}, which a {opts.type}"
                    f"{kept} does not report ({', '.join(m.value for m in reported) or 'nothing'}); "
                    "it would correct another sensor's values: give this sensor a calibration made for it"
                )
            if cal.metric in by_metric:
                raise ConfigError(
                    f"{where}: {cal.path}: {cal.metric.value} already has calibration "
                    f"{by_metric[cal.metric][1].id!r} from {by_metric[cal.metric][0]}; the node averages "
                    "one value per metric, so keep one"
                )
            by_metric[cal.metric] = (where, cal)
    return by_metric


def check(sensors: Sequence[SensorOptions]) -> None:
    """Refuse unusable calibration files at config load (dates are checked at start, with the clock)."""
    _load_sensor_calibrations(sensors)


@dataclass
class NodeCalibration:
    """The sampler's `calibrate` callable: (metric, averaged raw, window's averaged raws) ->
    (value, cal id, flags). Metrics without a calibration pass through uncalibrated."""

    by_metric: dict[Metric, Calibration]
    clock: Clock
    _expired_logged: set[Metric] = field(default_factory=set)

    @classmethod
    def start(cls, sensors: Sequence[SensorOptions], clock: Clock) -> NodeCalibration:
        """Load and check every calibration, refusing any that is not valid now (ConfigError, exit 2)."""
        loaded = _load_sensor_calibrations(sensors)
        now = clock()
        for where, cal in loaded.values():
            if not cal.is_valid_at(now):
                until = "" if cal.valid_to is None else f" until {cal.valid_to.isoformat()}"
                raise ConfigError(
                    f"{where}: {cal.path}: calibration {cal.id!r} is valid from "
                    f"{cal.valid_from.isoformat()}{until}, not now ({now.isoformat()}); fit a new one or "
                    "remove it from the config"
                )
        for _, cal in loaded.values():
            log.info("calibrating %s with %s (%s)", cal.metric.value, cal.id, cal.path)
        return cls({metric: cal for metric, (_, cal) in loaded.items()}, clock)

    def __call__(
        self, metric: Metric, raw: float, window: dict[Metric, float]
    ) -> tuple[float | None, str | None, set[Flag]]:
        cal = self.by_metric.get(metric)
        if cal is None:
            return raw, None, set()
        flags: set[Flag] = set()
        if not cal.is_valid_at(self.clock()):
            flags.add(Flag.CAL_EXPIRED)
            if metric not in self._expired_logged:
                self._expired_logged.add(metric)
                log.warning(
                    "calibration %s for %s expired at %s: readings are flagged cal_expired until it "
                    "is replaced",
                    cal.id,
                    metric.value,
                    cal.valid_to,
                )
        result = cal.apply(
            raw, rh=_as_stored(window.get(Metric.RH)), water_temp=_as_stored(window.get(Metric.WATER_TEMP))
        )
        return result.value, cal.id, flags | set(result.flags)
