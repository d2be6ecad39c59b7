"""Windows for a thousand nodes (issue 24): kept only for the metrics of the rules that apply to a
node, each only as long as its longest window, and in compact arrays whose sums stay exact."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.alerts import snapshot
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


DAY_MEAN = {"name": "pm25-24h", "type": "threshold", "metric": "pm2_5", "limit": 50.0, "average": "24h"}


def _fed(tables: list[dict[str, object]]) -> Engine:
    clock = FakeClock(T0)
    engine = Engine(rules(*tables), clock=clock)
    feed = Feed(engine, clock)
    for i in range(1, 300):
        ts = T0 + i * timedelta(minutes=1)
        for node in ("a", "b"):
            feed.one(reading(node, ts, None if i % 17 == 0 else float(i % 50)))
    return engine


def test_windows_saved_come_back_whole_with_the_late_readings_stored_since(tmp_path: Path) -> None:
    before = _fed([DAY_MEAN])
    path = tmp_path / snapshot.FILE
    saved = int((T0 + 5 * H).timestamp() * 1000)
    late = snapshot.save(before, path, saved)
    # stored after the save, stamped before what the next start reloads from InfluxDB
    old = int((T0 + 30 * timedelta(seconds=30)).timestamp() * 1000)
    late.add([snapshot.late_line("tsagaan", "c", old, {"pm2_5": 7.0})])
    late.add(['["tsagaan", "c", 12'])  # a line cut short by a power cut: not acknowledged, ignored
    late.close()
    after = Engine(rules(DAY_MEAN), clock=FakeClock(T0 + 5 * H))
    assert snapshot.load(after, path, saved + 60_000) == saved
    assert path.exists() and late.path.exists()  # kept until the next save replaces them
    assert after.arrivals == {**before.arrivals, ("tsagaan", "c"): old}
    c = after.series("tsagaan", "c", "pm2_5")
    assert c is not None and c.value_at(old) == 7.0 and len(c) == 1
    end = int((T0 + 4 * H).timestamp() * 1000)
    for node in ("a", "b"):
        was, now = before.series("tsagaan", node, "pm2_5"), after.series("tsagaan", node, "pm2_5")
        assert was is not None and now is not None and len(now) == len(was) == 299
        for minutes in (30, 60, 240):
            assert now.mean(end, minutes * 60_000, 0.5) == was.mean(end, minutes * 60_000, 0.5)
        assert now.add(end + 3_600_000, 3.0) and now.mean_value(end + 3_600_000, 60_000, 0.0) == 3.0


def test_saved_windows_for_other_rules_or_too_old_or_damaged_are_not_used(tmp_path: Path) -> None:
    path = tmp_path / snapshot.FILE
    saved = int((T0 + 5 * H).timestamp() * 1000)
    other = {**DAY_MEAN, "average": "8h"}
    for engine, now_ms, damage in (
        (Engine(rules(other), clock=FakeClock(T0)), saved, False),  # other windows
        (Engine(rules(DAY_MEAN), clock=FakeClock(T0)), saved + 26 * 3_600_000, False),  # too old
        (Engine(rules(DAY_MEAN), clock=FakeClock(T0)), saved, True),  # cut short
    ):
        snapshot.save(_fed([DAY_MEAN]), path, saved).close()
        if damage:
            path.write_bytes(path.read_bytes()[:-9])
        assert snapshot.load(engine, path, now_ms) is None
        assert engine.all_series() == [] and not path.exists()
        assert list(tmp_path.glob("*.late")) == []
    # a file without its late log: readings stored since may be missing from it
    snapshot.save(_fed([DAY_MEAN]), path, saved).remove()
    engine = Engine(rules(DAY_MEAN), clock=FakeClock(T0))
    assert snapshot.load(engine, path, saved) is None and engine.all_series() == []


@settings(max_examples=100)
@given(
    st.lists(st.tuples(st.integers(0, 400), st.one_of(st.none(), st.floats(0, 1000))), max_size=60),
    st.lists(st.tuples(st.integers(0, 400), st.one_of(st.none(), st.floats(0, 65_535))), max_size=200),
    st.integers(1, 400),
)
def test_extend_gives_the_windows_add_gives(
    first: list[tuple[int, float | None]], more: list[tuple[int, float | None]], duration_min: int
) -> None:
    # a restart's bulk reload must leave a window exactly as reading by reading would, in order or not
    one, bulk = Series(keep_ms=180 * 60_000), Series(keep_ms=180 * 60_000)
    for minute, v in first:
        one.add(minute * 60_000, v)
        bulk.add(minute * 60_000, v)
    for minute, v in more:
        one.add(minute * 60_000, v)
    bulk.extend([m * 60_000 for m, _ in more], [v for _, v in more])
    assert len(one) == len(bulk)
    for end in (0, 100, 200, 400):
        assert bulk.mean(end * 60_000, duration_min * 60_000, 0.0) == one.mean(
            end * 60_000, duration_min * 60_000, 0.0
        )


def test_extend_in_order_after_the_newest_takes_the_bulk_path_and_keeps_nulls() -> None:
    series = Series(keep_ms=10**9)
    series.add(0, 5.0)
    series.extend([60_000 * i for i in range(1, 6)], [1.0, None, 3.0, None, 5.0])
    assert series.mean(300_000, 10**6, 0.0).n == 4 and series.mean(300_000, 10**6, 0.0).value == 3.5
    series.extend([360_000, 420_000], [7.0, 9.0])
    assert series.mean(420_000, 120_000, 0.0).value == 8.0 and series.value_at(120_000) is None
