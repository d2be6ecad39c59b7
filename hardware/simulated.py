"""Simulated dust and turbidity sensors: seeded, with a baseline, noise, a daily cycle and pollution
events, so the demo and the tests can produce exceedances on purpose and reproducibly.

The value at time t is `baseline * (1 + daily_amplitude * cycle(t)) + events(t) + noise`, clipped at 0.
`cycle` peaks at 08:00 and 20:00 UTC (traffic and heating hours on a haul road); events are offsets
in seconds from the moment the driver was created (the node's start).
"""

from __future__ import annotations

import math
import random
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.clock import Clock
from contract.metrics import Metric
from hardware.base import Sample, SensorOptions, register


class Event(BaseModel):
    """A pollution event: `add` (in the metric's unit) during [start_s, start_s + duration_s)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_s: float = Field(ge=0)
    duration_s: float = Field(gt=0)
    add: float


class _SimulatedOptions(SensorOptions):
    seed: int = 1
    noise: float = Field(default=1.0, ge=0, description="Standard deviation of the gaussian noise.")
    daily_amplitude: float = Field(default=0.2, ge=0, le=1)
    events: list[Event] = Field(default_factory=list)


class SimulatedPmOptions(_SimulatedOptions):
    type: Literal["simulated-pm"]
    baseline: float = Field(default=12.0, ge=0, description="PM2.5 in µg/m³.")


class SimulatedTurbidityOptions(_SimulatedOptions):
    type: Literal["simulated-turbidity"]
    baseline: float = Field(default=4.0, ge=0, description="Turbidity in NTU.")
    noise: float = Field(default=0.2, ge=0)


class _Simulator:
    def __init__(self, opts: _SimulatedOptions, baseline: float, clock: Clock) -> None:
        self._opts = opts
        self._baseline = baseline
        self._clock = clock
        self._rng = random.Random(opts.seed)
        self._started = clock()

    def value(self) -> float:
        now = self._clock()
        hours = now.hour + now.minute / 60 + now.second / 3600
        cycle = math.cos((hours - 8.0) * math.pi / 6.0) * 0.5 + 0.5  # peaks at 08:00 and 20:00
        elapsed = (now - self._started).total_seconds()
        add = sum(e.add for e in self._opts.events if e.start_s <= elapsed < e.start_s + e.duration_s)
        value = self._baseline * (1 + self._opts.daily_amplitude * (cycle - 0.5)) + add
        value += self._rng.gauss(0.0, self._opts.noise)
        return max(value, 0.0)


@register(SimulatedPmOptions)
class SimulatedPm:
    """A PMS-like dust sensor: PM2.5 from the model above, PM1.0 and PM10 in fixed ratios to it."""

    metrics = (Metric.PM1_0, Metric.PM2_5, Metric.PM10)

    def __init__(self, opts: SimulatedPmOptions, clock: Clock) -> None:
        self._sim = _Simulator(opts, opts.baseline, clock)
        self._clock = clock

    @classmethod
    def open(cls, opts: SimulatedPmOptions, clock: Clock) -> SimulatedPm:
        return cls(opts, clock)

    def read(self) -> list[Sample]:
        pm25 = self._sim.value()
        now = self._clock()
        return [
            Sample(Metric.PM1_0, round(pm25 * 0.7, 1), now),
            Sample(Metric.PM2_5, round(pm25, 1), now),
            Sample(Metric.PM10, round(pm25 * 1.6, 1), now),
        ]

    def close(self) -> None:
        pass


@register(SimulatedTurbidityOptions)
class SimulatedTurbidity:
    """A turbidity probe already converted to NTU."""

    metrics = (Metric.TURBIDITY,)

    def __init__(self, opts: SimulatedTurbidityOptions, clock: Clock) -> None:
        self._sim = _Simulator(opts, opts.baseline, clock)
        self._clock = clock

    @classmethod
    def open(cls, opts: SimulatedTurbidityOptions, clock: Clock) -> SimulatedTurbidity:
        return cls(opts, clock)

    def read(self) -> list[Sample]:
        ntu = self._sim.value()
        return [Sample(Metric.TURBIDITY, round(ntu, 2), self._clock())]

    def close(self) -> None:
        pass
