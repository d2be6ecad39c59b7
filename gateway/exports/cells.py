"""Cell texts the exchange formats share: fixed decimals (their `Decimal(p,s)` types) and times."""

from __future__ import annotations

from datetime import datetime, timedelta

from gateway.timerange import parse_time


def fixed(value: float | None, decimals: int) -> str:
    """`Decimal(p, s)` as text: `s` decimals, no exponent, no thousands separator; empty for None."""
    if value is None:
        return ""
    text = f"{value:.{decimals}f}"
    return "0." + "0" * decimals if text.startswith("-") and float(text) == 0 else text


def seconds(value: float) -> str:
    """A duration: whole seconds without decimals (AQDx: "use 3600, not 3600.000"), else up to ms."""
    return str(int(value)) if float(value).is_integer() else f"{value:.3f}".rstrip("0")


def window(reading: dict[str, object], duration_s: int) -> tuple[datetime, datetime]:
    """(start, end) of a reading's averaging window: our `time` is its end, the formats want its start."""
    end = parse_time(str(reading["time"]), "time")
    return end - timedelta(seconds=duration_s), end
