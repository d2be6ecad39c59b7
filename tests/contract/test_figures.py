"""contract.figures: a value compared with a limit shows the digits that decide the comparison."""

from __future__ import annotations

import pytest

from contract.figures import figure, limit_text


@pytest.mark.parametrize(
    ("value", "limit", "comparison", "shown"),
    [
        (50.03, 50.0, "above", "50.03"),  # exceeds: must not read 50.0
        (50.0, 50.0, "above", "50.0"),  # equal does not exceed "strictly above": 50.0 is the truth
        (49.96, 50.0, "above", "49.96"),  # does not exceed: must not read 50.0 ... (equal is fine)
        (49.96, 50.0, "at_or_above", "49.96"),  # ... but at-or-above, 50.0 would say it exceeds
        (50.0004, 50.0, "above", "50.000"),  # beyond the stored precision: as far as it goes
        (92.48, 50.0, "above", "92.5"),  # far from the limit: the metric's decimals
        (14.96, 15.0, "below", "14.96"),  # a minimum: under it, shown under it
        (92.48, None, "above", "92.5"),
    ],
)
def test_figure(value: float, limit: float | None, comparison: str, shown: str) -> None:
    assert figure(value, 1, limit, comparison) == shown  # type: ignore[arg-type]


def test_a_limit_is_written_exactly() -> None:
    assert limit_text(50.0, 1) == "50.0"
    assert limit_text(49.95, 1) == "49.95"
    assert limit_text(35, 0) == "35"
