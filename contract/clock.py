"""The clock every time-dependent part takes as a parameter, so tests can run a day in seconds."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]
"""Returns the current time as an aware UTC datetime."""


def utc_now() -> datetime:
    """The real clock."""
    return datetime.now(UTC)
