"""What every alert channel shares: its options, the one-method protocol, the error it raises.

A channel delivers one `Notification` (an alert event, or a digest of several) and raises
`ChannelError` when it could not. Retries, backoff, rate limits, quiet hours and isolation live in
the dispatcher (gateway/channels/dispatcher.py), so a channel file is only the delivery itself.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from contract.i18n import Texts

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
    language: str = Field(default="en", description="Of the messages: contract/i18n/<language>.toml.")
    retries: int = Field(default=4, ge=0, le=20)
    retry_backoff_s: float = Field(default=2.0, ge=0, description="First pause; doubles each retry.")
    queue_size: int = Field(default=1000, ge=1)

    @field_validator("quiet_hours")
    @classmethod
    def _hours(cls, value: str | None) -> str | None:
        if value is not None and not _HHMM.match(value):
            raise ValueError("quiet_hours is 'HH:MM-HH:MM' in `timezone`, like '22:00-07:00'")
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        return Texts.known_language(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return Texts.known_zone(value)

    @property
    def label(self) -> str:
        return self.name or str(getattr(self, "type", "channel"))

    def other_languages(self) -> set[str]:
        """Languages some recipient reads besides the channel's `language` (email's `to`)."""
        return set()

    def language_of(self, recipient: str) -> str:
        """The language `recipient` (a key of the channel's `recipients`) reads: its link's pages
        speak it. The channel's `language`, unless the channel names one per recipient (email)."""
        return self.language


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
    translations: dict[str, tuple[str, str]] = field(default_factory=dict)
    """(subject, text) in each language a recipient reads besides the channel's own."""

    def words(self, language: str | None) -> tuple[str, str]:
        """(subject, text) for a recipient reading `language`; the channel's own for None."""
        return self.translations.get(language or "", (self.subject, self.text))

    personal: Mapping[str, Notification] = field(default_factory=dict)
    """Per recipient (a channel's `recipients` key), the same message with that recipient's own
    acknowledgement links, when the gateway makes links ([web] public_url)."""

    def to(self, recipient: str) -> Notification:
        """The message for one recipient: its own links if it has them, else the shared one (which
        says how to acknowledge with the CLI or MQTT)."""
        return self.personal.get(recipient, self)


class Channel(Protocol):
    def send(self, note: Notification) -> None:
        """Deliver once, or raise ChannelError. Called on the channel's own worker thread."""

    def close(self) -> None: ...


class Links(Protocol):
    """Makes an acknowledgement link (gateway/alerts/links.py) for one alert and recipient."""

    def url(self, alert_id: str, recipient: str, channel: str, language: str | None = None) -> str: ...


def recipients_of(channel: object) -> Mapping[str, str]:
    """A channel's people, each key (how the channel picks its message, `Notification.to`) with the
    name an acknowledgement through their link records. A channel without the attribute (the MQTT
    topic, read by anyone subscribed) gets no links: its messages say how to acknowledge instead."""
    found = getattr(channel, "recipients", None)
    return found if isinstance(found, Mapping) else {}


Publish = Callable[[str, bytes], bool]
"""Publish (topic, payload) at QoS 1; False when the broker connection is down."""


@dataclass(frozen=True)
class ChannelContext:
    """What the gateway lends a channel that cannot work from its options alone: the alert topic
    goes out through the gateway's own MQTT connection, under its topic prefix (retained, with
    `publish_retained`, when the gateway gives it), and knows the alerts active when it starts."""

    publish: Publish
    prefix: str
    publish_retained: Publish | None = None
    active: Callable[[ChannelOptions], list[dict[str, Any]]] = lambda opts: []
    """The latest event of each alert active now, as a channel with these options words it (its
    body): the alert topic keeps a node's retained copy on one of them after a restart."""


Build = Callable[[Any, ChannelContext], Channel]
CHANNELS: dict[str, tuple[type[ChannelOptions], Build]] = {}
"""Channel `type` -> (options model, builder). Filled by `@register_channel` as
`gateway/channels/__init__.py` imports each module of the package."""


def type_key(options: type[BaseModel]) -> str:
    """The one value of an options model's `type` Literal: the key a config table picks it by."""
    literal_args: tuple[object, ...] = getattr(options.model_fields["type"].annotation, "__args__", ())
    if len(literal_args) != 1:
        raise TypeError(f"{options.__name__}.type must be a Literal with one value")
    return str(literal_args[0])


def register_channel(
    options: type[ChannelOptions], build: Build | None = None
) -> Callable[[type[Any]], type[Any]]:
    """Class decorator: make a channel selectable by the `type` of its options. Most channels are
    built from their options alone; one that needs the gateway's context passes `build`."""
    name = type_key(options)

    def decorate(cls: type[Any]) -> type[Any]:
        if name in CHANNELS:
            raise TypeError(f"channel type {name!r} registered twice")
        CHANNELS[name] = (options, build or (lambda opts, ctx: cls(opts)))
        return cls

    return decorate


def open_channel(opts: ChannelOptions, ctx: ChannelContext) -> Channel:
    """Build the channel for validated options (an optional library is imported here)."""
    return CHANNELS[str(getattr(opts, "type", ""))][1](opts, ctx)
