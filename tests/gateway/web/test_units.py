"""Small pure parts of the dashboard: node statuses, turbidity bands, limit lines, parameter parsing."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from gateway.config import load
from gateway.subscriber import Message
from gateway.web.context import Upstream
from gateway.web.levels import limit_lines, turbidity_level
from gateway.web.params import BadRequest, SeriesQuery, auto_every, parse_time
from gateway.web.server import upstreams_of
from gateway.web.status import StatusBoard
from tests.helpers import ROOT

TOPIC = "mw/v1/tsagaan/haul-road/status"


def _msg(payload: bytes, topic: str = TOPIC) -> Message:
    return Message(topic, payload, 0, 1, True, time.monotonic())


def test_status_board_keeps_the_position_through_the_last_will_and_ignores_garbage() -> None:
    board = StatusBoard("mw")
    board.handle(_msg(json.dumps({"state": "online", "lat": 43.1, "lon": 106.8}).encode()))
    board.handle(_msg(b'{"state": "offline"}'))
    status = board.get("tsagaan", "haul-road")
    assert status is not None and (status.state, status.lat, status.lon) == ("offline", 43.1, 106.8)
    for junk in (b"\xff", b"[1]", b'{"state": "online", "lat": "north", "lon": 1e999}'):
        board.handle(_msg(junk))
    status = board.get("tsagaan", "haul-road")
    assert status is not None and (status.lat, status.lon) == (43.1, 106.8)
    board.handle(_msg(b"", "mw/v1/tsagaan/haul-road/status"))  # a cleared retained message
    assert board.get("tsagaan", "haul-road") is None
    board.handle(_msg(b'{"state": "online"}', "other/v1/x/y/status"))  # not our prefix
    assert board.all() == {}


@pytest.mark.parametrize(
    ("ntu", "key"),
    [
        (0.0, "clear"),
        (0.99, "clear"),
        (1.0, "slightly-cloudy"),
        (3.99, "slightly-cloudy"),
        (4.0, "cloudy"),  # visible (WHO)
        (5.0, "cloudy"),
        (24.9, "cloudy"),
        (25.0, "very-cloudy"),  # past Idaho's ten-day allowance over background
        (35.0, "very-cloudy"),
        (50.0, "muddy"),
        (250.0, "very-muddy"),
    ],
)
def test_turbidity_bands(ntu: float, key: str) -> None:
    assert turbidity_level(ntu).key == key


def test_5_and_35_ntu_are_not_in_one_band() -> None:
    """Issue 18: both were "Cloudy"."""
    assert turbidity_level(5.0) != turbidity_level(35.0)


def test_limit_lines_are_the_short_term_limits_of_the_chosen_standards() -> None:
    lines = limit_lines(["who-2021", "mns-4585-2016"], "pm10")
    assert [(x.standard, x.value, x.average) for x in lines] == [
        ("who-2021", 45.0, "24h"),
        ("mns-4585-2016", 100.0, "24h"),
    ]
    assert limit_lines(["who-2021"], "turbidity") == []


def test_times_parse_strictly() -> None:
    assert parse_time("2026-11-22") == datetime(2026, 11, 22, tzinfo=UTC)
    assert parse_time("2026-11-22T14:00:00+02:00") == datetime(2026, 11, 22, 12, tzinfo=UTC)
    for bad in ("2026-11-22T10:00:00", "22/11/2026", "now", "2026-11-22 10:00:00Z", "1999-12-31"):
        with pytest.raises(ValueError):
            parse_time(bad)


def test_every_defaults_to_about_600_points_or_fewer() -> None:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    assert auto_every(start, datetime(2026, 11, 2, tzinfo=UTC)) == 300
    assert auto_every(start, datetime(2026, 11, 8, tzinfo=UTC)) == 1800
    with pytest.raises(BadRequest):
        SeriesQuery(start=start, end=start).bounds(start, start - start, 1)


def test_the_dashboard_takes_the_difference_rules_pairs_from_the_config() -> None:
    """The example's river rule pairs river-down with river-up: the chart of river-down's turbidity
    overlays river-up (tests/gateway/web/test_phone.py draws it)."""
    pairs = upstreams_of(load(ROOT / "examples" / "gateway.toml"))
    assert pairs == (Upstream("river-over-background", "river-down", "river-up", "turbidity"),)
    assert pairs[0].pairs("tsagaan", "river-down", "turbidity")
    assert not pairs[0].pairs("tsagaan", "river-down", "water_temp")
    assert not pairs[0].pairs("tsagaan", "river-up", "turbidity")
    assert not Upstream("r", "a", "b", "turbidity", ("pit",)).pairs("tsagaan", "a", "turbidity")
