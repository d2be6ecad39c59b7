"""What every alert channel shares: its options, the one-method protocol, the error it raises.

A channel delivers one `Notification` (an alert event, or a digest of several) and raises
`ChannelError` when it could not. Retries, backoff, rate limits, quiet hours and isolation live in
the dispatcher (gateway/channels/dispatcher.py), so a channel file is only the delivery itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$")


class ChannelError(Exception):
    """A delivery that did not happen; `retryable` False means the same message will never succeed
    (a 4xx, a refused recipient), so the dispatcher gives up at once."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class ChannelOptions(BaseModel):
    """Keys every `[[alerts.channels]]` table takes besides its `type`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = Field(default=None, description="For logs and counters; default: the type.")
    severities: list[Literal["info", "warning", "critical"]] = ["info", "warning", "critical"]
    rules: list[str] | None = Field(default=None, description="Only these rules; default: all.")
    rate_limit: int = Field(default=20, ge=0, description="Messages per rate_period; 0 = no limit.")
    rate_period_s: float = Field(default=3600.0, gt=0)
    quiet_hours: str | None = Field(default=None, description="'22:00-07:00': hold non-critical events.")
    timezone: str = "UTC"
    retries: int = Field(default=4, ge=0, le=20)
    retry_backoff_s: float = Field(default=2.0, ge=0, description="First pause; doubles each retry.")
    queue_size: int = Field(default=1000, ge=1)

    @field_validator("quiet_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None and not _HHMM.match(value):
            raise ValueError("quiet_hours is 'HH:MM-HH:MM' in `timezone`, like '22:00-07:00'")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name like 'Asia/Ulaanbaatar'"
            ) from None
        return value

    @property
    def label(self) -> str:
        return self.name or str(getattr(self, "type", "channel"))


@dataclass(frozen=True)
class Notification:
    """One message for people: a single alert event, or a digest of events held back by a rate
    limit or quiet hours (`events` then holds them all)."""

    subject: str
    text: str
    body: dict[str, Any]  # the JSON a machine gets: the alert payload, or {"digest": true, ...}
    severity: str
    events: list[dict[str, Any]] = field(default_factory=list)
    is_digest: bool = False


class Channel(Protocol):
    def send(self, note: Notification) -> None:
        """Deliver once, or raise ChannelError. Called on the channel's own worker thread."""

    def close(self) -> None: ...
