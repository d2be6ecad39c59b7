"""What a reading from one (site, node) steps: each rule kind adds itself here once per node, in the
way the engine should step it, so the engine's loop over readings asks no rule what it is.

The ways: `WINDOW` (a mean over a window several rules may share), `INSTANT` (the reading's value),
`NOWCAST` (hourly means), `OTHER` (the kind's own evaluator on every reading), `READING` (the kind
judges the reading itself, with how long that has lasted), and `on_arrival` (a reading arrived at all).
"""

from __future__ import annotations

from typing import Any

from gateway.alerts.windows import Series

WINDOW, INSTANT, NOWCAST, OTHER, READING = "window", "instant", "nowcast", "other", "reading"
Key = tuple[str, str, str]  # (rule, site, node)


class Plan:
    """The rules a reading from one (site, node) steps, by how, and that node's windows by metric."""

    def __init__(self) -> None:
        self.on_arrival: list[Any] = []
        # In the rules' order: (way, rule, its evaluator, metric the reading must carry, machine
        # key, two constants of the way's fast path, limit, is "above" the rule's direction); a
        # READING rule needs neither evaluator nor metric (the engine tracks how long its condition
        # has lasted).
        self.evaluated: list[tuple[str, Any, Any, str, Key, Any, Any, float, bool]] = []
        self.series: dict[str, Series] = {}
        self.windowed: tuple[str, ...] = ()  # the metrics this node's rules keep a window of
        self.seen: Series | None = None  # timestamps of readings that carry no windowed metric
        # What each reading computes once for the fast paths of several rules: (WINDOW, metric,
        # window ms, completeness) -> its mean and, without one, why (`Engine` `_window`); (NOWCAST,
        # metric, completeness, 0) -> the NowCast, its category and rank (nowcast.nowcast_category).
        self.groups: list[tuple[str, str, Any, Any]] = []

    def group(self, kind: str, metric: str, a: Any, b: Any) -> int:
        """The index of this window in `groups`, added the first time a rule asks for it."""
        if (kind, metric, a, b) not in self.groups:
            self.groups.append((kind, metric, a, b))
        return self.groups.index((kind, metric, a, b))

    def add_series(self, metric: str, series: Series) -> Series:
        self.series[metric] = series
        return series

    def add_seen(self, series: Series) -> Series:
        self.seen = series
        return series
