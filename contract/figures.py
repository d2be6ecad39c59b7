"""How a value compared with a limit is written, so the words and the digits never disagree.

"PM2.5 50.0 exceeds the limit of 50.0" (the value was 50.03) is what a lawyer quotes: a figure that
is said to exceed a limit must show the digits that make it exceed. Every figure starts with its
metric's own decimals (contract/metrics.py) and takes more, up to `MAX_DECIMALS` (the precision the
gateway stores alert values with), only when the shown value and the shown limit would otherwise
tell a different story from the values themselves. The alert messages, the report and the pages
use this one function, so the same value reads the same everywhere.
"""

from __future__ import annotations

from typing import Literal

from contract.metrics import spec

MAX_DECIMALS = 3
Comparison = Literal["above", "at_or_above", "below"]
"""How a limit is exceeded: strictly above it, at or above it, or (a minimum) strictly below it."""


def exceeds(value: float, limit: float, comparison: Comparison = "above") -> bool:
    if comparison == "at_or_above":
        return value >= limit
    if comparison == "below":
        return value < limit
    return value > limit


def decimals_of(metric: str) -> int:
    row = spec(metric)
    return row.decimals if row else 1


MEAN_EXTRA_DECIMALS = 1
"""A mean keeps one more decimal than the metric's readings (24-hour means in the report, period means
in `export --average`): the same digits wherever the same mean is written, and `figure` adds more
where those would hide which side of a limit it is on."""


def mean_decimals(metric: str) -> int:
    return decimals_of(metric) + MEAN_EXTRA_DECIMALS


def limit_text(limit: float, decimals: int) -> str:
    """A limit is written exactly: its own digits when it has more than the metric's (49.95)."""
    d = decimals
    while d < MAX_DECIMALS and round(limit, d) != round(limit, MAX_DECIMALS):
        d += 1
    return f"{limit:.{d}f}"


def figure(value: float, decimals: int, limit: float | None = None, comparison: Comparison = "above") -> str:
    """`value` with `decimals`, or more when fewer would show it on the wrong side of `limit` or
    equal to it when it is not (50.03 against 50.0 is "50.03", not "50.0"; 49.96 is "49.96")."""
    if limit is None:
        return f"{value:.{decimals}f}"
    shown_limit = float(limit_text(limit, decimals))
    truth = exceeds(value, limit, comparison)

    def misleads(shown: float) -> bool:
        return exceeds(shown, shown_limit, comparison) != truth or (shown == shown_limit and value != limit)

    d = decimals
    while d < MAX_DECIMALS and misleads(float(f"{value:.{d}f}")):
        d += 1
    return f"{value:.{d}f}"
