"""NowCast and AQI categories against values computed by hand from EPA's definitions."""

from __future__ import annotations

import pytest

from gateway.aqi import aqi, category, nowcast


def test_nowcast_weights_recent_hours_with_a_floor_of_one_half() -> None:
    # w* = 10/30 -> floored to 0.5: (30 + 0.5*20 + 0.25*10) / (1 + 0.5 + 0.25) = 24.28 -> 24.2
    assert nowcast([30.0, 20.0, 10.0]) == 24.2


def test_nowcast_with_steady_air_is_the_plain_mean() -> None:
    # w* = 1: all hours weigh the same
    assert nowcast([12.0] * 12) == 12.0


def test_nowcast_skips_missing_hours_but_needs_two_of_the_latest_three() -> None:
    # w* = 8/16 = 0.5: (16 + 0.25*8) / (1 + 0.25) = 14.4
    assert nowcast([16.0, None, 8.0]) == 14.4
    assert nowcast([16.0, None, None, 8.0, 8.0]) is None
    assert nowcast([]) is None


@pytest.mark.parametrize(
    ("pm25", "key", "index"),
    [
        (0.0, "good", 0),
        (9.0, "good", 50),
        (9.1, "moderate", 51),
        (35.49, "moderate", 100),
        (35.5, "usg", 101),
        (55.5, "unhealthy", 151),
        (125.5, "very-unhealthy", 201),
        (225.5, "hazardous", 301),
    ],
)
def test_category_breakpoints(pm25: float, key: str, index: int) -> None:
    assert category(pm25).key == key
    assert aqi(pm25) == index
