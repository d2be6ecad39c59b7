"""Windows for a thousand nodes (issue 24): kept only for the metrics of the rules that apply to a
node, each only as long as its longest window, and in compact arrays whose sums stay exact."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.alerts.engine import Engine
from gateway.alerts.windows import Series
from tests.alert_helpers import T0, Feed, reading, rules
from tests.fakes.clock import FakeClock

H = timedelta(hours=1)


def test_a_node_keeps_windows_only_for_the_rules_that_apply_to_it_and_only_as_long_as_they_need() -> None:
    clock = FakeClock(T0)
    engine = Engine(
        rules(
            {
                "name": "pit-24h",
                "type": "threshold",
                "metric": "pm2_5",
                "limit": 50.0,
                "average": "24h",
                "sites": ["pit"],
            },
            {"name": "pm10-now", "type": "threshold", "metric": "pm10", "limit": 150.0},
        ),
        clock=clock,
    )
    feed = Feed(engine, clock)
    for i in range(1, 3 * 60 + 1):  # three hours of minute readings at two sites
        ts = T0 + i * timedelta(minutes=1)
        for site in ("pit", "town"):
            feed.one(reading("n1", ts, 10.0, site=site))
            feed.one(reading("n1", ts, 20.0, site=site, metric="pm10"))
    assert engine.series("pit", "n1", "pm2_5") is not None
    assert engine.series("town", "n1", "pm2_5") is None  # no rule for town reads PM2.5
    pm10 = engine.series("town", "n1", "pm10")
    assert pm10 is not None and len(pm10) < 80  # an instant rule: an hour and a little, not 25 h
    assert len(engine.series("pit", "n1", "pm2_5") or []) == 180
    engine.preload("town", "n2", "pm2_5", int((T0 + H).timestamp() * 1000), 5.0)  # a restart, too
    assert engine.series("town", "n2", "pm2_5") is None


@settings(max_examples=20, deadline=None)
@given(st.lists(st.one_of(st.none(), st.floats(60_000, 65_535)), min_size=150, max_size=260))
def test_sums_near_the_top_of_the_range_stay_exact_where_64_bits_would_wrap(
    values: list[float | None],
) -> None:
    # particle counts reach 65,535: 150 of them in units of 2^-40 are past 2^63
    series = Series(keep_ms=10**9)
    for minute, v in enumerate(values):
        series.add((minute + 1) * 60_000, v, 60)
    window = [v for v in values if v is not None]
    mean = series.mean(len(values) * 60_000, len(values) * 60_000, 0.0)
    assert mean.n == len(window)
    if window:
        assert mean.value == pytest.approx(sum(window) / len(window), rel=1e-12)
    assert series.mean_value(len(values) * 60_000, len(values) * 60_000, 0.0) == mean.value
