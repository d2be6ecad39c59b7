"""Readings with their own timestamps and a clock the test moves: a simulated day runs in milliseconds."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from contract.flags import Flag
from contract.metrics import Metric
from contract.wire import MetricValue, ReadingPayload
from gateway.alerts.config import AlertsConfig, AnyRule
from gateway.alerts.engine import Engine
from gateway.alerts.events import AlertEvent
from tests.fakes.clock import FakeClock

T0 = datetime(2026, 11, 22, 0, 0, tzinfo=UTC)


def rules(*tables: dict[str, Any], presets: Iterable[str] = ()) -> list[AnyRule]:
    return AlertsConfig.model_validate({"rules": list(tables), "presets": list(presets)}).all_rules()


def reading(
    node: str,
    ts: datetime,
    value: float | None,
    *,
    metric: str = "pm2_5",
    site: str = "tsagaan",
    period_s: int = 60,
    flags: tuple[Flag, ...] = (),
) -> ReadingPayload:
    seq = int((ts - T0).total_seconds() // period_s) + 1
    return ReadingPayload(
        schema=1,
        site=site,
        node=node,
        seq=max(seq, 1),
        ts=ts,
        period_s=period_s,
        metrics={Metric(metric): MetricValue(value=value, n=0 if value is None else 60)},
        flags=list(flags),
    )


class Feed:
    """Feeds readings live: the clock stands a second after each reading's time."""

    def __init__(self, engine: Engine, clock: FakeClock, *, lag: timedelta = timedelta(seconds=1)) -> None:
        self.engine, self.clock, self.lag = engine, clock, lag
        self.events: list[AlertEvent] = []

    def series(
        self, node: str, start: datetime, values: Iterable[float | None], *, step_s: int = 60, **kw: Any
    ) -> datetime:
        ts = start
        for v in values:
            ts += timedelta(seconds=step_s)
            self.one(reading(node, ts, v, **{"period_s": step_s, **kw}))
        return ts

    def one(self, r: ReadingPayload) -> None:
        self.clock.now = max(self.clock.now, r.ts + self.lag)
        self.events += self.engine.on_readings([r])

    def states(self, rule: str | None = None) -> list[str]:
        return [e.state for e in self.events if rule is None or e.rule == rule]
