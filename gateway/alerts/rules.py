"""One small evaluator per rule type: given the windows and a reading time, does the condition hold?

Each returns an `Evaluation`; "unknown" (with the reason) when the data cannot say, e.g. a 24-hour
window that is less than 75 % complete. Offline and sensor-fault conditions depend on arrival times
and on how long a fault has lasted, which the engine tracks; their evaluators take those as inputs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from gateway import aqi
from gateway.alerts.config import DifferenceRule, NowcastRule, ThresholdRule, Tier
from gateway.alerts.machine import Evaluation
from gateway.alerts.windows import Series

SeriesOf = Callable[[str, str, str], Series | None]  # (site, node, metric)
INSTANT_MAX_AGE_MS = 15 * 60_000  # how old a reference's latest value may be for an instant difference


def _value(series: Series, t_ms: int, average_s: float, min_completeness: float) -> tuple[float | None, str]:
    if average_s <= 0:
        value = series.value_at(t_ms)
        return value, "" if value is not None else "no value in this reading"
    window = series.mean(t_ms, int(average_s * 1000), min_completeness)
    if window.value is None:
        return None, incomplete(window.completeness, min_completeness)
    return window.value, ""


def incomplete(completeness: float, needed: float) -> str:
    """Why a window's mean does not count (`ack --list` shows it)."""
    return f"window {completeness:.0%} complete, below the {needed:.0%} needed"


def threshold(rule: ThresholdRule, series_of: SeriesOf, site: str, node: str, t_ms: int) -> Evaluation:
    series = series_of(site, node, rule.metric.value)
    if series is None:
        return Evaluation("unknown", reason=f"no {rule.metric.value} at this node")
    value, why = _value(series, t_ms, rule.average_s, rule.min_completeness)
    if value is None:
        return Evaluation("unknown", limit=rule.limit, reason=why)
    if rule.direction == "above":
        exceeds = value > rule.limit
        clear_ok = not exceeds if rule.clear_below is None else value < rule.clear_below
    else:
        exceeds = value < rule.limit
        clear_ok = not exceeds if rule.clear_below is None else value > rule.clear_below
    return Evaluation("exceeds" if exceeds else "ok", value, rule.limit, clear_ok)


_CATEGORY = {c.key: c for c in aqi.CATEGORIES}
RANK = {key: i for i, key in enumerate(aqi.CATEGORY_KEYS)}
"""AQI categories from the best (0, "good") up: a rule raises at its category's rank or above."""


# The same 12 hourly means give the same NowCast all hour long, for every NowCast rule.
@functools.lru_cache(maxsize=1024)
def nowcast_category(hourly: tuple[float | None, ...]) -> tuple[float | None, str, int]:
    """(NowCast, its category's key, that category's rank); (None, "", -1) without a NowCast."""
    value = aqi.nowcast(hourly)
    if value is None:
        return None, "", -1
    key = aqi.category(value).key
    return value, key, RANK[key]


NO_NOWCAST = "fewer than two of the last three hours complete"


def nowcast(rule: NowcastRule, series_of: SeriesOf, site: str, node: str, t_ms: int) -> Evaluation:
    series = series_of(site, node, rule.metric)
    threshold_cat = _CATEGORY[rule.category]
    if series is None:
        return Evaluation("unknown", reason="no pm2_5 at this node")
    value, key, rank = nowcast_category(series.hourly_means(t_ms, rule.min_completeness))
    if value is None:
        return Evaluation("unknown", limit=threshold_cat.low, reason=NO_NOWCAST)
    exceeds = rank >= RANK[rule.category]
    return Evaluation("exceeds" if exceeds else "ok", value, threshold_cat.low, not exceeds, category=key)


def allowed_increase(tiers: tuple[Tier, ...], background: float) -> float:
    """The largest increase over `background` the tiers allow (the stricter of limit and limit_pct)."""
    for tier in tiers:
        if tier.up_to is None or background <= tier.up_to:
            limits = []
            if tier.limit is not None:
                limits.append(tier.limit)
            if tier.limit_pct is not None:
                limits.append(max(background, 0.0) * tier.limit_pct / 100.0)
            return min(limits)
    return min(t.limit for t in tiers if t.limit is not None) if any(t.limit for t in tiers) else 0.0


def difference(rule: DifferenceRule, series_of: SeriesOf, site: str, node: str, t_ms: int) -> Evaluation:
    metric = rule.metric.value
    down, up = series_of(site, rule.node, metric), series_of(site, rule.reference, metric)
    if down is None or up is None:
        missing = rule.reference if up is None else rule.node
        return Evaluation("unknown", reason=f"no {metric} from {missing} yet")
    if rule.average_s <= 0:
        value = down.latest_before(t_ms, INSTANT_MAX_AGE_MS)
        background = up.latest_before(t_ms, INSTANT_MAX_AGE_MS)
        why = "no recent value"
    else:
        d = down.mean(t_ms, int(rule.average_s * 1000), rule.min_completeness)
        u = up.mean(t_ms, int(rule.average_s * 1000), rule.min_completeness)
        value, background = d.value, u.value
        why = (
            f"windows {d.completeness:.0%} / {u.completeness:.0%} complete (need {rule.min_completeness:.0%})"
        )
    if value is None or background is None:
        return Evaluation("unknown", reason=why)
    increase = value - background
    allowed = allowed_increase(rule.tier_list, background)
    exceeds = increase > allowed
    return Evaluation(
        "exceeds" if exceeds else "ok", increase, allowed, not exceeds, reason=f"background {background:.1f}"
    )
