"""The alert engine with simulated time: readings carry their own timestamps, the clock is moved by
the test, nothing sleeps."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from contract.flags import Flag
from contract.i18n import Texts
from contract.metrics import Metric
from contract.wire import MetricValue, ReadingPayload
from gateway.alerts.config import IDAHO_TIERS, Tier
from gateway.alerts.engine import Engine
from gateway.alerts.machine import MachineState
from gateway.alerts.messages import EN
from gateway.alerts.reasons import words
from gateway.alerts.rules import allowed_increase
from gateway.alerts.windows import Series
from gateway.aqi import nowcast
from tests.alert_helpers import T0, Feed, reading, rules
from tests.fakes.clock import FakeClock

H = timedelta(hours=1)
M = timedelta(minutes=1)


def engine(*tables: dict[str, object], clock: FakeClock | None = None, **kw: object) -> tuple[Engine, Feed]:
    clock = clock or FakeClock(T0)
    e = Engine(rules(*tables), clock=clock, **kw)  # type: ignore[arg-type]
    return e, Feed(e, clock)


DUST = {
    "name": "pm25-instant",
    "type": "threshold",
    "metric": "pm2_5",
    "limit": 50.0,
    "clear_below": 40.0,
    "clear_after": "10m",
    "remind_every": "1h",
    "severity": "warning",
}


def test_a_dust_event_raises_once_reminds_on_time_and_clears_once_after_hysteresis() -> None:
    _, feed = engine(DUST)
    ts = feed.series("haul-road", T0, [20.0] * 30)
    # almost 3 hours over the limit, dipping under it (never under clear_below) every few minutes
    ts = feed.series("haul-road", ts, [45.0 if i % 7 == 6 else 80.0 for i in range(170)])
    # back down: 9 minutes below 40 (not enough), one 42, then 20 minutes clean
    ts = feed.series("haul-road", ts, [30.0] * 9 + [42.0] + [30.0] * 20)
    assert feed.states() == ["raised", "reminder", "reminder", "cleared"]
    raised, r1, r2, cleared = feed.events
    assert raised.started == T0 + 31 * M and raised.value == 80.0 and not raised.late
    assert r1.at == raised.at + H and r2.at == raised.at + 2 * H
    assert r2.peak == 80.0 and "peak 80.0" in r2.message
    # the all-clear counts from the last value above clear_below (the 42), then 10 minutes
    assert cleared.ended == T0 + (30 + 170 + 10 + 1) * M
    assert cleared.at == cleared.ended + 10 * M
    assert all(e.id == raised.id for e in feed.events)
    assert raised.message == (
        "PM2.5 80.0 µg/m³ at haul-road (tsagaan) exceeds the limit of 50.0 µg/m³ (strictly above it) "
        "since 00:31 UTC"
    )


def test_a_24_hour_mean_is_evaluated_only_from_18_hours_of_data_then_raises() -> None:
    rule = {"name": "pm25-24h", "type": "threshold", "metric": "pm2_5", "limit": 50.0, "average": "24h"}
    e, feed = engine(rule)
    ts = feed.series("haul-road", T0, [60.0] * (18 * 6 - 1), step_s=600)
    assert feed.events == []
    m = e.machines[("pm25-24h", "tsagaan", "haul-road")]
    assert not m.evaluable and m.reason == "window_incomplete complete=74 needed=75"  # a key and values
    assert words(m.reason, EN) == "window 74% complete, below the 75% needed"
    feed.series("haul-road", ts, [60.0], step_s=600)  # the 108th reading: 18 h = 75 % of the window
    assert feed.states() == ["raised"]
    assert feed.events[0].at == T0 + 18 * H
    assert feed.events[0].average == "24h" and feed.events[0].value == 60.0
    assert "24-hour mean 60.0 µg/m³" in feed.events[0].message
    assert m.evaluable


def test_incomplete_windows_are_not_evaluated_and_say_why() -> None:
    rule = {"name": "pm25-1h", "type": "threshold", "metric": "pm2_5", "limit": 50.0, "average": "1h"}
    e, feed = engine(rule)
    feed.series("haul-road", T0, [500.0] * 20, step_s=180, period_s=60)  # one reading in three
    assert feed.events == []
    m = e.machines[("pm25-1h", "tsagaan", "haul-road")]
    assert not m.evaluable and words(m.reason, EN).startswith("window 33% complete")


def test_redelivered_readings_count_once_in_the_window() -> None:
    rule = {"name": "pm25-1h", "type": "threshold", "metric": "pm2_5", "limit": 50.0, "average": "1h"}
    e, feed = engine(rule)
    ts = feed.series("haul-road", T0, [40.0] * 45)
    for _ in range(3):  # the same 15 minutes of 90 µg/m³ readings, three times (broker redelivery)
        feed.series("haul-road", ts, [90.0] * 15)
    mean = e.series("tsagaan", "haul-road", "pm2_5").mean(
        int((ts + 15 * M).timestamp() * 1000), 3_600_000, 0.75
    )  # type: ignore[union-attr]
    assert mean.n == 60 and mean.value == pytest.approx((45 * 40 + 15 * 90) / 60)
    assert feed.states() == ["raised"]


def test_nowcast_matches_a_worked_example_from_epas_definition() -> None:
    # Hours (most recent first) 50, 45, 40: w* = 40/50 = 0.8 (above the 0.5 floor)
    # NowCast = (50 + 0.8·45 + 0.64·40) / (1 + 0.8 + 0.64) = 111.6 / 2.44 = 45.737… -> 45.7 µg/m³
    assert nowcast([50.0, 45.0, 40.0]) == 45.7
    # a wide range: w* = 10/40 -> floored to 0.5; Σ 0.5^i c_i / Σ 0.5^i over 12 hours = 35.096… -> 35.0
    assert nowcast([40, 35, 30, 25, 20, 15, 10, 10, 12, 14, 16, 18]) == 35.0
    # through the engine: three hours of one-minute readings at 20, 25, then 50 µg/m³. After two
    # hours: w = 20/25 = 0.8, (25 + 0.8·20) / 1.8 = 22.7: Moderate, no alert. After the third:
    # w* = 20/50 -> 0.5, (50 + 0.5·25 + 0.25·20) / 1.75 = 38.57 -> 38.5 µg/m³: Unhealthy for
    # Sensitive Groups, AQI (150 − 101) / (55.4 − 35.5) · (38.5 − 35.5) + 101 = 108.4 -> 108
    rule = {"name": "aqi", "type": "nowcast", "category": "usg"}
    _, feed = engine(rule)
    ts = T0
    for level in (20.0, 25.0, 50.0):
        ts = feed.series("haul-road", ts, [level] * 60)
    feed.series("haul-road", ts, [50.0])  # the first reading of the next hour closes the third
    assert feed.states() == ["raised"]
    raised = feed.events[0]
    assert raised.value == 38.5 and raised.category == "usg" and raised.average == "nowcast"
    assert raised.at == T0 + 3 * H  # the reading that ends the third hour
    assert "Unhealthy for Sensitive Groups (AQI 108)" in raised.message


def test_nowcast_needs_two_of_the_three_latest_hours() -> None:
    _, feed = engine({"name": "aqi", "type": "nowcast", "category": "moderate"})
    ts = feed.series("haul-road", T0, [80.0] * 60)  # one hour, then silence
    feed.series("haul-road", ts + 2 * H, [80.0])
    assert feed.events == []


def test_difference_with_an_absolute_limit_over_the_upstream_reference() -> None:
    rule = {
        "name": "river",
        "type": "difference",
        "metric": "turbidity",
        "node": "river-down",
        "reference": "river-up",
        "limit": 5.0,
        "average": "15m",
        "clear_after": "0",
    }
    _, feed = engine(rule)
    ts = T0
    for down in [14.0] * 20 + [17.0] * 20 + [12.0] * 15:
        ts += M
        feed.one(reading("river-up", ts, 10.0, metric="turbidity"))
        feed.one(reading("river-down", ts, down, metric="turbidity"))
    assert feed.states() == ["raised", "cleared"]
    raised = feed.events[0]
    assert raised.node == "river-down" and raised.limit == 5.0 and raised.value > 5.0
    assert "above river-up, over the allowed increase of 5.0 NTU" in raised.message


def test_difference_with_a_relative_limit() -> None:
    rule = {
        "name": "nz-15pct",
        "type": "difference",
        "metric": "turbidity",
        "node": "river-down",
        "reference": "river-up",
        "limit_pct": 15.0,
        "average": "instant",
    }
    _, feed = engine(rule)
    ts = T0
    for down in (114.0, 114.9, 116.0):
        ts += M
        feed.one(reading("river-up", ts, 100.0, metric="turbidity"))
        feed.one(reading("river-down", ts, down, metric="turbidity"))
    assert feed.states() == ["raised"]
    assert feed.events[0].value == 16.0 and feed.events[0].limit == 15.0


def test_difference_with_its_reference_at_another_site() -> None:
    """On the hub: the upstream reference is at another site (of another jurisdiction); a reading
    from either steps the downstream node's machine, whose alert is the downstream site's."""
    rule = {
        "name": "border", "type": "difference", "metric": "turbidity", "node": "w-down",
        "sites": ["downriver"], "reference": "w-up", "reference_site": "upriver", "limit": 5.0,
        "average": "15m", "clear_after": "0",
    }  # fmt: skip
    _, feed = engine(rule)
    ts = T0
    for down in [14.0] * 20 + [17.0] * 20 + [12.0] * 15:
        ts += M
        feed.one(reading("w-up", ts, 10.0, metric="turbidity", site="upriver"))
        feed.one(reading("w-down", ts, down, metric="turbidity", site="downriver"))
        # the same node names at the wrong sites are neither reference nor downstream
        feed.one(reading("w-up", ts, 99.0, metric="turbidity", site="downriver"))
        feed.one(reading("w-down", ts, 99.0, metric="turbidity", site="upriver"))
    assert feed.states() == ["raised", "cleared"]
    raised = feed.events[0]
    assert (raised.site, raised.node) == ("downriver", "w-down") and raised.id.startswith("downriver.w-down.")
    assert "above upriver/w-up" in raised.message
    # without the reference's readings nothing is judged; with them, the downstream node is
    _, feed = engine(rule)
    feed.one(reading("w-down", T0 + M, 30.0, metric="turbidity", site="downriver"))
    assert feed.states() == []
    for i in range(2, 20):
        feed.one(reading("w-up", T0 + i * M, 10.0, metric="turbidity", site="upriver"))
        feed.one(reading("w-down", T0 + i * M, 30.0, metric="turbidity", site="downriver"))
    assert feed.states() == ["raised"]


@pytest.mark.parametrize(
    "table, error",
    [
        ({"reference_site": "upriver"}, "needs `sites`"),
        ({"reference_site": "upriver", "sites": ["upriver"], "reference": "w-down"}, "same node"),
    ],
)
def test_a_reference_at_another_site_names_the_downstream_site(table: dict[str, object], error: str) -> None:
    base = {"name": "b", "type": "difference", "metric": "turbidity", "node": "w-down", "reference": "w-up",
            "limit": 5.0}  # fmt: skip
    with pytest.raises(ValueError, match=error):
        rules({**base, **table})


@pytest.mark.parametrize(
    ("background", "allowed"),
    [(10.0, 5.0), (50.0, 5.0), (100.0, 10.0), (249.0, 24.9), (250.0, 25.0), (900.0, 25.0)],
)
def test_idaho_tiers_follow_idapa_58_01_02_252_01_b(background: float, allowed: float) -> None:
    assert allowed_increase(IDAHO_TIERS, background) == pytest.approx(allowed)


def test_both_limits_means_the_stricter_one() -> None:
    assert allowed_increase((Tier(limit=5.0, limit_pct=10.0),), 20.0) == 2.0


def test_offline_after_the_node_stops_and_clears_when_it_returns() -> None:
    clock = FakeClock(T0)
    e, feed = engine({"name": "silent", "type": "offline", "after": "30m"}, clock=clock)
    ts = feed.series("haul-road", T0, [12.0] * 5)
    for minutes in range(1, 40):
        clock.now = ts + minutes * M
        feed.events += e.tick()
    assert feed.states() == ["raised"]
    assert feed.events[0].at == ts + 31 * M  # the first tick more than 30 minutes after the last reading
    assert feed.events[0].metric == "status" and "is offline" in feed.events[0].message
    feed.one(reading("haul-road", clock.now, 12.0))
    assert feed.states() == ["raised", "cleared"]


def test_offline_from_the_last_will_status() -> None:
    clock = FakeClock(T0)
    e, feed = engine({"name": "silent", "type": "offline", "after": "30m"}, clock=clock)
    feed.series("river-up", T0, [4.0] * 3, metric="turbidity")
    feed.events += e.on_status("tsagaan", "river-up", "offline")
    feed.events += e.tick()
    assert feed.states() == ["raised"]
    feed.events += e.on_status("tsagaan", "river-up", "online")
    assert feed.states() == ["raised", "cleared"]


OFFLINE_RULE = {"name": "silent", "type": "offline", "after": "2m", "severity": "critical"}


def test_a_planned_stop_is_told_once_and_its_last_reading_does_not_clear_it() -> None:
    """The flap of issue 18: a SIGTERM gave a critical "offline", an all-clear 0.12 s later (the last
    partial reading arrives after the status) and a second "offline" two minutes later."""
    clock = FakeClock(T0)
    e, feed = engine(OFFLINE_RULE, clock=clock)
    ts = feed.series("haul-road", T0, [12.0] * 5)
    feed.events += e.on_status("tsagaan", "haul-road", "stopped")
    feed.one(reading("haul-road", ts + timedelta(seconds=20), 12.0, period_s=20))  # the partial window
    for minutes in range(1, 8 * 60):  # hours stopped: no reminder, no second alert
        clock.now = ts + minutes * M
        feed.events += e.tick()
    assert feed.states() == ["raised"]
    (stopped,) = feed.events
    assert stopped.severity == "info" and stopped.msg_id == "alert.stop.stopped"
    assert "stopped as planned" in stopped.message and stopped.message.startswith("haul-road (tsagaan)")
    feed.events += e.on_status("tsagaan", "haul-road", "online")  # started again
    feed.one(reading("haul-road", clock.now, 12.0))
    assert feed.states() == ["raised", "cleared"]
    assert feed.events[1].msg_id == "alert.stop.back" and feed.events[1].severity == "info"


def test_an_unplanned_loss_is_told_once_and_late_readings_do_not_clear_it() -> None:
    clock = FakeClock(T0)
    e, feed = engine(OFFLINE_RULE, clock=clock)
    ts = feed.series("haul-road", T0, [12.0] * 5)
    feed.events += e.on_status("tsagaan", "haul-road", "offline")  # the last will
    for minutes in range(1, 60):
        clock.now = ts + minutes * M
        feed.events += e.tick()
        if minutes == 3:  # a reading in flight when the link went, delivered late
            feed.one(reading("haul-road", ts + M, 12.0))
    assert feed.states() == ["raised"]
    assert feed.events[0].severity == "critical" and feed.events[0].msg_id == "alert.offline.raised"
    feed.events += e.on_status("tsagaan", "haul-road", "online")
    feed.one(reading("haul-road", clock.now, 12.0))
    assert feed.states() == ["raised", "cleared"]


def test_the_offline_alert_counts_ago_as_the_card_does() -> None:
    """One way of counting: "last reading 47 h ago", from the last reading, in both."""
    clock = FakeClock(T0)
    e, _ = engine(OFFLINE_RULE, clock=clock)
    e.preload("tsagaan", "haul-road", None, int(T0.timestamp() * 1000), None)
    clock.now = T0 + 47 * H + 5 * M
    (raised,) = e.tick()
    assert raised.message == "haul-road (tsagaan) is offline: last reading 47 h ago"
    assert raised.message.endswith(Texts("en").ago(47 * 3600 + 300))


def test_sensor_fault_for_longer_than_the_duration() -> None:
    _, feed = engine({"name": "fault", "type": "sensor_fault", "metric": "pm2_5", "after": "20m"})
    ts = feed.series("haul-road", T0, [12.0] * 5)
    ts = feed.series("haul-road", ts, [None] * 30, flags=(Flag.SENSOR_FAULT,))
    feed.series("haul-road", ts, [12.0] * 2)
    assert feed.states() == ["raised", "cleared"]
    assert feed.events[0].started == T0 + (5 + 21) * M


def _pms(node: str, ts: datetime, pm25: float | None) -> ReadingPayload:
    """A reading as a PMS5003 node sends it: PM2.5 with the metrics no rule here reads."""
    metrics = {Metric.PM2_5: MetricValue(value=pm25, n=60)}
    for extra in (Metric.PM1_0, Metric.PM1_0_ATM, Metric.PC0_3, Metric.PC2_5, Metric.RH):
        metrics[extra] = MetricValue(value=7.0, n=60)
    return ReadingPayload(schema=1, site="tsagaan", node=node, seq=1, ts=ts, period_s=60, metrics=metrics)


def test_windows_are_kept_only_for_the_metrics_rules_read() -> None:
    e, feed = engine(DUST, {"name": "fault", "type": "sensor_fault", "after": "20m"})
    for i in range(40):
        feed.one(_pms("haul-road", T0 + (i + 1) * M, 80.0 if i >= 30 else 20.0))
    assert feed.states() == ["raised"]  # the PM2.5 rule still sees its metric
    assert e.series("tsagaan", "haul-road", "pm2_5") is not None
    assert [m for m in Metric if e.series("tsagaan", "haul-road", m.value) is not None] == [Metric.PM2_5]
    e.preload("tsagaan", "haul-road", "rh", int((T0 + 50 * M).timestamp() * 1000), 40.0)
    assert e.series("tsagaan", "haul-road", "rh") is None  # nor from history after a restart


def test_a_sensor_fault_on_readings_without_a_windowed_metric_counts_each_reading_once() -> None:
    # Only a sensor-fault rule on any metric: no window is kept, and a redelivered reading must
    # still be told from a new one (the reminder clock and the fault's start depend on it).
    e, feed = engine({"name": "fault", "type": "sensor_fault", "after": "20m", "remind_every": "1h"})
    ts = feed.series("river-up", T0, [3.0] * 3, metric="turbidity")
    sent = [reading("river-up", ts + (i + 1) * M, None, metric="turbidity") for i in range(25)]
    for r in sent:
        feed.one(r)
    assert feed.states() == ["raised"] and e.series("tsagaan", "river-up", "turbidity") is None
    machine = e.machines[("fault", "tsagaan", "river-up")]
    before = (machine.last_t_ms, machine.since_ms, machine.last_notice_ms)
    for r in sent[-3:]:  # the broker redelivers the last few
        assert e.on_readings([r]) == []
    assert (machine.last_t_ms, machine.since_ms, machine.last_notice_ms) == before


def test_a_reading_older_than_the_windows_keep_is_judged_as_the_evaluator_judges_it() -> None:
    # After a restart (windows refilled, machines idle) a very late reading for an instant rule:
    # the engine keeps 1 h here, so a reading from 2.5 h before the newest is not in the window.
    rule = {"name": "t", "type": "threshold", "metric": "turbidity", "limit": 10.0}
    clock = FakeClock(T0 + 4 * H)
    e = Engine(rules(rule), clock=clock)
    for i in range(181):
        e.preload("tsagaan", "a", "turbidity", int((T0 + i * M).timestamp() * 1000), 3.0)
    e.finish_preload()
    for late in (T0 + 40 * M + timedelta(seconds=30), T0 + 100 * M + timedelta(seconds=30)):
        e.on_readings([reading("a", late, 3.0, metric="turbidity")])
        m = e.machines[("t", "tsagaan", "a")]
        assert not m.evaluable and words(m.reason, EN) == "no value in this reading"


def test_a_late_good_reading_does_not_restart_a_sensor_faults_clock() -> None:
    _, feed = engine({"name": "fault", "type": "sensor_fault", "metric": "pm2_5", "after": "20m"})
    ts = feed.series("haul-road", T0, [12.0] * 5)
    ts = feed.series("haul-road", ts, [None] * 10, flags=(Flag.SENSOR_FAULT,))
    feed.one(reading("haul-road", T0 + 90 * timedelta(seconds=1), 12.0))  # from before the fault, late
    feed.series("haul-road", ts, [None] * 20, flags=(Flag.SENSOR_FAULT,))
    assert feed.states() == ["raised"]
    assert feed.events[0].started == T0 + (5 + 21) * M  # counted from the first faulty reading


def test_a_late_backlog_exceedance_is_raised_once_marked_late_with_its_real_times() -> None:
    clock = FakeClock(T0 + timedelta(days=7))  # the node replays a week-old backlog now
    rule = {**DUST, "remind_every": "30m"}
    e = Engine(rules(rule), clock=clock)
    events = []
    ts = T0
    for i in range(6 * 60):  # six hours: over the limit from 02:00 to 03:00
        ts += M
        events += e.on_readings([reading("haul-road", ts, 80.0 if 120 <= i < 180 else 20.0)])
    assert [ev.state for ev in events] == ["raised", "cleared"]  # no reminders for the past
    raised, cleared = events
    assert raised.late and cleared.late and raised.id == cleared.id
    assert raised.started == T0 + 121 * M and cleared.ended == T0 + 181 * M
    assert raised.message.startswith("Late (from replayed data): PM2.5 80.0 µg/m³")
    assert "2026-11-22 02:01 UTC" in raised.message
    # the same backlog again (a second replay) changes nothing
    ts = T0
    again = []
    for i in range(6 * 60):
        ts += M
        again += e.on_readings([reading("haul-road", ts, 80.0 if 120 <= i < 180 else 20.0)])
    assert again == []


def test_one_reading_from_a_fast_clock_does_not_blind_the_engine_to_the_next_exceedance() -> None:
    # Issue 22: a node's clock ran 290 s fast (inside the gateway's 300 s tolerance) for one reading,
    # then was corrected. The three dust readings after it are behind that reading's time.
    clock = FakeClock(T0)
    e = Engine(rules(DUST), clock=clock)
    events = e.on_readings([reading("haul-road", T0 + timedelta(seconds=290), 20.0)])
    for i in range(3):
        clock.now = T0 + i * M + timedelta(seconds=1)
        events += e.on_readings([reading("haul-road", T0 + i * M, 800.0)])
    assert [ev.state for ev in events] == ["raised"]  # at once, not when real time catches up
    raised = events[0]
    assert raised.started == T0 and raised.value == 800.0 and not raised.late  # it arrived live
    # Reading time catches up: still over the limit, then down; one alert, cleared once.
    feed = Feed(e, clock)
    feed.events = events
    feed.series("haul-road", T0 + 2 * M, [800.0] * 3 + [10.0] * 15)
    assert feed.states() == ["raised", "cleared"]
    cleared = feed.events[-1]
    assert cleared.id == raised.id and cleared.peak == 800.0 and not cleared.late
    assert cleared.ended == T0 + 6 * M  # the first reading back under clear_below, in order


def test_a_late_reading_behind_live_ones_is_raised_marked_late_with_its_real_time() -> None:
    # Live readings first, then a backlog from an hour before arrives: judged like replayed data.
    e, feed = engine(DUST)
    ts = feed.series("haul-road", T0 + H, [20.0] * 10)
    for i in range(5):
        feed.one(reading("haul-road", T0 + 20 * M + i * M, 80.0))  # the clock stays at the live time
    assert feed.states() == ["raised"]
    raised = feed.events[0]
    assert raised.late and raised.started == T0 + 20 * M
    assert raised.message.startswith("Late (from replayed data): PM2.5 80.0 µg/m³")
    m = e.machines[("pm25-instant", "tsagaan", "haul-road")]
    assert m.value == 80.0 and m.peak == 80.0
    feed.series("haul-road", ts, [20.0] * 11)  # the live readings, in order, give the all-clear
    assert feed.states() == ["raised", "cleared"] and feed.events[-1].late


def test_a_reading_behind_an_alert_already_cleared_raises_nothing_again() -> None:
    _, feed = engine(DUST)
    ts = feed.series("haul-road", T0, [80.0] * 5 + [20.0] * 12)
    assert feed.states() == ["raised", "cleared"]
    # the broker delivers a delayed reading from inside that alert: it was told already
    feed.one(reading("haul-road", T0 + 3 * M + timedelta(seconds=30), 90.0))
    assert feed.states() == ["raised", "cleared"]
    # one from after the all-clear, behind the newest reading, is a new exceedance
    feed.one(reading("haul-road", ts, 20.0))
    feed.one(reading("haul-road", ts - timedelta(seconds=30), 90.0))
    assert feed.states() == ["raised", "cleared", "raised"]


def test_an_exceedance_behind_the_all_clears_wait_restarts_it() -> None:
    _, feed = engine(DUST)
    ts = feed.series("haul-road", T0, [80.0] * 5 + [20.0] * 5)
    feed.one(reading("haul-road", ts - timedelta(seconds=90), 85.0))  # behind, inside the wait
    assert feed.states() == ["raised"]
    feed.series("haul-road", ts, [20.0] * 9)
    assert feed.states() == ["raised"]  # the wait counts from the reading after the 85
    feed.series("haul-road", ts + 9 * M, [20.0] * 2)
    assert feed.states() == ["raised", "cleared"]
    assert feed.events[-1].peak == 85.0 and feed.events[-1].ended == ts + M


def test_ack_stops_reminders_but_the_clear_still_comes() -> None:
    e, feed = engine(DUST)
    ts = feed.series("haul-road", T0, [80.0] * 70)
    assert feed.states() == ["raised", "reminder"]
    ack = e.ack(feed.events[0].id, "oyuna")
    assert ack is not None and ack.state == "acknowledged" and ack.acked_by == "oyuna"
    assert e.ack(feed.events[0].id, "again") is None
    feed.events.append(ack)
    ts = feed.series("haul-road", ts, [80.0] * 180)
    feed.series("haul-road", ts, [10.0] * 15)
    assert feed.states() == ["raised", "reminder", "acknowledged", "cleared"]
    assert feed.events[-1].acked_by == "oyuna"


def test_restored_machines_neither_forget_nor_repeat_an_alert() -> None:
    e, feed = engine(DUST)
    ts = feed.series("haul-road", T0, [80.0] * 10)
    saved = [MachineState(**m.to_dict()) for m in e.take_dirty()]
    assert feed.states() == ["raised"]
    e2, feed2 = engine(DUST, clock=feed.clock)
    e2.restore(saved)
    ts = feed2.series("haul-road", ts, [80.0] * 10)
    feed2.series("haul-road", ts, [10.0] * 12)
    assert feed2.states() == ["cleared"]
    assert feed2.events[0].id == feed.events[0].id


def test_scope_and_missing_metrics_are_not_errors() -> None:
    rule = {**DUST, "nodes": ["haul-road"]}
    _, feed = engine(rule)
    feed.series("school", T0, [90.0] * 3)
    feed.series("river-down", T0, [90.0] * 3, metric="turbidity")
    assert feed.events == []
    feed.series("haul-road", T0, [90.0])
    assert feed.states() == ["raised"]


def test_a_preset_names_its_standard_in_the_sentence() -> None:
    e = Engine(rules(presets=["mns-4585-2016"]), clock=(clock := FakeClock(T0)))
    feed = Feed(e, clock)
    feed.series("haul-road", T0, [61.2] * (18 * 6), step_s=600)
    assert [(ev.rule, ev.state) for ev in feed.events] == [("mns-4585-2016-pm25-24h", "raised")]
    assert feed.events[0].message == (
        "PM2.5 24-hour mean 61.2 µg/m³ at haul-road (tsagaan) exceeds the MNS 4585:2016 limit of "
        "50.0 µg/m³ (strictly above it) since 18:00 UTC"
    )


@settings(max_examples=100)
@given(
    st.lists(st.tuples(st.integers(0, 200), st.floats(0, 1000)), min_size=1, max_size=80),
    st.integers(0, 200),
)
def test_a_window_mean_ignores_order_and_repeats(points: list[tuple[int, float]], end: int) -> None:
    series = Series(keep_ms=10**9)
    first: dict[int, float] = {}
    for minute, value in points:  # any order, any repeats: the first value per timestamp is kept
        if minute not in first:
            first[minute] = value
        series.add(minute * 60_000, first[minute], 60)
    window = [v for m, v in first.items() if end - 60 < m <= end]
    mean = series.mean(end * 60_000, 3_600_000, 0.01)
    assert mean.n == len(window)
    if window:
        assert mean.value == pytest.approx(sum(window) / len(window))
    else:
        assert mean.value is None


# (minute, value or None) in any order, with repeats: late readings, gaps and trims
MINUTES_AND_VALUES = st.lists(
    st.tuples(st.integers(0, 400), st.one_of(st.none(), st.floats(0, 1000, allow_subnormal=False))),
    min_size=1,
    max_size=120,
)


@settings(max_examples=100)
@given(
    MINUTES_AND_VALUES,
    st.integers(0, 400),
    st.integers(1, 240),
)
def test_window_sums_match_a_plain_mean_through_late_readings_nulls_and_trimming(
    points: list[tuple[int, float | None]], end: int, duration_min: int
) -> None:
    keep_min = 180
    series = Series(keep_ms=keep_min * 60_000)
    kept: dict[int, float | None] = {}
    for minute, value in points:
        series.add(minute * 60_000, value, 60)
        kept[minute] = value  # a repeated timestamp now carries the value it was last sent with
        newest = max(kept)
        kept = {m: v for m, v in kept.items() if m >= newest - keep_min}
    window = [v for m, v in kept.items() if end - duration_min < m <= end and v is not None]
    mean = series.mean(end * 60_000, duration_min * 60_000, 0.0)
    assert mean.n == len(window)
    if window:
        assert mean.value == pytest.approx(sum(window) / len(window), rel=1e-9, abs=1e-6)
    else:
        assert mean.value is None


@settings(max_examples=150)
@given(
    MINUTES_AND_VALUES,
    st.integers(0, 420),
    st.integers(1, 240),
    st.sampled_from([0.0, 0.5, 0.75, 1.0]),
)
def test_the_engines_mean_value_is_the_window_means_value(
    points: list[tuple[int, float | None]], end: int, duration_min: int, needed: float
) -> None:
    # the engine's per-reading shortcut must agree with mean() wherever a window can end: at the
    # newest reading, before it, past it, through late readings, repeats, gaps and trims
    series = Series(keep_ms=180 * 60_000)
    for minute, value in points:
        series.add(minute * 60_000, value, 60)
        for at in (minute, end):
            expected = series.mean(at * 60_000, duration_min * 60_000, needed).value
            assert series.mean_value(at * 60_000, duration_min * 60_000, needed) == expected


@settings(max_examples=60)
@given(st.lists(st.sampled_from([10.0, 45.0, 55.0, 200.0, None]), min_size=1, max_size=300))
def test_any_series_gives_well_formed_alert_lifecycles(values: list[float | None]) -> None:
    _, feed = engine(DUST)
    feed.series("haul-road", T0, values)
    open_id: str | None = None
    for ev in feed.events:
        if ev.state == "raised":
            assert open_id is None, "raised twice without a clear"
            open_id = ev.id
        else:
            assert ev.id == open_id, f"{ev.state} outside an alert"
            if ev.state == "cleared":
                open_id = None
        if ev.state in ("raised", "reminder"):
            assert ev.value is not None and ev.value > 50.0


@settings(max_examples=60)
@given(
    st.lists(st.sampled_from([10.0, 45.0, 55.0, 200.0]), min_size=40, max_size=40),
    st.permutations(range(40)),
)
@example([200.0] * 30 + [10.0] * 10, [39, *range(39)])  # issue 22: the newest first, from a fast clock
def test_readings_in_any_order_give_well_formed_lifecycles_and_lose_no_exceedance(
    values: list[float], order: list[int]
) -> None:
    # A node's clock ran fast, readings arrived out of order: whatever the order, no alert is lost.
    clock = FakeClock(T0)
    e = Engine(rules(DUST), clock=clock)
    events = []
    for i in order:
        clock.now = max(clock.now, T0 + i * M + timedelta(seconds=1))
        events += e.on_readings([reading("haul-road", T0 + i * M, values[i])])
    open_id: str | None = None
    for ev in events:
        if ev.state == "raised":
            assert open_id is None, "raised twice without a clear"
            open_id = ev.id
        else:
            assert ev.id == open_id and ev.state in ("reminder", "cleared")
            if ev.state == "cleared":
                open_id = None
    if any(v > 50.0 for v in values):
        assert events and events[0].state == "raised" and events[0].value is not None
        assert events[0].value > 50.0
    else:
        assert events == []
